// Shared by the end-to-end tests: runs the real CLI (dist/cli.js) against
// the real veil-sandbox, and checks that nothing is left behind.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { afterEach, beforeEach } from 'node:test';

export const repo = fileURLToPath(new URL('..', import.meta.url));
export const cli = join(repo, 'dist', 'cli.js');
export const busybox = '/bin/busybox';

/** Every process started by one test carries this in its environment. */
let mark = '';
/** A private TMPDIR for the CLI and the sandbox: must stay empty. */
let privateTmp = '';
let tmpBefore = new Set();

const veilTmpEntries = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('veil')));

/** Call from beforeEach. */
export function startWatching() {
  mark = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  privateTmp = mkdtempSync(join(tmpdir(), 'vtest-'));
  tmpBefore = veilTmpEntries();
}

/**
 * The environment that marks a process as this test's (for assertNothingLeft)
 * and gives it the private TMPDIR: for daemons a test starts itself.
 */
export const watchedEnv = () => ({ VEIL_TEST_MARK: mark, TMPDIR: privateTmp });

/** Host processes whose environment holds this test's mark. */
function markedProcesses() {
  const found = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').includes(`VEIL_TEST_MARK=${mark}`)) {
        found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ')}`);
      }
    } catch {
      // Exited while we looked, or a kernel thread.
    }
  }
  return found;
}

/** Call from afterEach: no sandbox process and no temporary file survive a run. */
export async function assertNothingLeft() {
  let left = markedProcesses();
  // The CLI reaps the sandbox before it exits, so a short grace is plenty.
  for (let i = 0; i < 20 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = markedProcesses();
  }
  const leftovers = readdirSync(privateTmp);
  rmSync(privateTmp, { recursive: true, force: true });
  assert.deepEqual(left, [], 'sandbox processes left behind');
  assert.deepEqual(leftovers, [], 'files left in TMPDIR');
  const newVeilTmp = [...veilTmpEntries()].filter((n) => !tmpBefore.has(n));
  assert.deepEqual(newVeilTmp, [], `veil* entries left in ${tmpdir()}`);
}

/**
 * Runs `veil ARGS…` and resolves with its status and output.
 * `onSpawn(child)` may signal it; `input` is written to its stdin.
 */
export function veil(args, { input, keepStdinOpen = false, onSpawn, timeoutMs = 30000, env = {}, cwd, wrap = [] } = {}) {
  return new Promise((resolve, reject) => {
    // wrap: a command that execs the rest (same pid), e.g. unshare.
    const argv = [...wrap, process.execPath, cli, ...args];
    const child = spawn(argv[0], argv.slice(1), {
      env: { ...process.env, ...env, VEIL_TEST_MARK: mark, TMPDIR: privateTmp },
      cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.stdin.on('error', () => undefined);
    // keepStdinOpen: stdin stays an open, silent pipe until the CLI exits.
    if (keepStdinOpen) child.stdin.write(input ?? '');
    else child.stdin.end(input ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`veil ${args.join(' ')} timed out after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      assertUnsupportedReportedOnce(stderr);
      resolve({ status, signal, stdout, stderr });
    });
    onSpawn?.(child);
  });
}

/**
 * Why `platform` cannot run here, or null when it can (veil-sandbox builds
 * it as `boot` would). The platform the tests run on is $VEIL_PLATFORM
 * (scripts/e2e-matrix.mjs sets it), the CLI's default.
 */
export function platformUnusable(platform) {
  const { sandboxBinary } = createRequire(import.meta.url)('../dist/native.js');
  const r = spawnSync(sandboxBinary(), ['platform', platform], { encoding: 'utf8' });
  if (r.error) return r.error.message;
  return r.status === 0 ? null : r.stderr.trim() || `status ${r.status}`;
}

/** `veil do -- ARGS…` */
export const veilDo = (cmd, options) => veil(['do', '--', ...cmd], options);

/** An unimplemented syscall is reported once per sandbox (in the debug log, stderr with --debug or --strace). */
function assertUnsupportedReportedOnce(stderr) {
  const reports = stderr.split('\n').filter((l) => l.includes('unsupported syscall'));
  assert.deepEqual(reports, [...new Set(reports)], `a syscall was reported twice:\n${stderr}`);
}

/** The file name column of `ls -l` output (symlink targets dropped). */
export function namesFromLsLong(text) {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('total'))
    .map((l) => {
      const fields = l.trim().split(/\s+/);
      const arrow = fields.indexOf('->');
      return arrow > 0 ? fields[arrow - 1] : fields[fields.length - 1];
    });
}

/** Asserts a failed run printed exactly one `veil: …` line matching `pattern`. */
export function assertOneLineError(result, pattern) {
  assert.notEqual(result.status, 0, `expected failure, got status 0; stdout: ${result.stdout}`);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0], /^veil: /);
  assert.match(lines[0], pattern);
}

// ---------------------------------------------------------------------------
// The Debian test rootfs (scripts/build-rootfs.sh) and native comparisons.

export const DEFAULT_ROOTFS = '/var/cache/veil/rootfs-bookworm';
export const ROOTFS_MARKER = '.veil-rootfs-complete';

/**
 * The rootfs the userland tests run: $VEIL_ROOTFS (which must then be
 * complete), else the default path when its build finished. `skip` is a
 * reason to skip (only when neither is available), else false.
 */
export function testRootfs() {
  const dir = process.env.VEIL_ROOTFS || DEFAULT_ROOTFS;
  if (existsSync(join(dir, ROOTFS_MARKER))) return { dir, skip: false };
  if (process.env.VEIL_ROOTFS) {
    throw new Error(`VEIL_ROOTFS=${dir} has no ${ROOTFS_MARKER}: build it with scripts/build-rootfs.sh ${dir}`);
  }
  return { dir, skip: `no Debian test rootfs: run scripts/build-rootfs.sh (or set VEIL_ROOTFS) to run these tests` };
}

/** The environment `veil do` gives the command (ts/spec.ts defaultEnv). */
export function doEnv() {
  return [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `TERM=${process.env.TERM || 'xterm'}`,
    'HOME=/root',
  ];
}

/**
 * `veil do --rootfs DIR -- CMD…`. The rootfs is a per-machine cache the
 * tests share, so by default (guard) the CLI runs in its own mount
 * namespace and gets DIR as a read-only bind mount: a sandbox whose root is
 * not copy-on-write (an old veil-sandbox, a bug) gets EROFS instead of
 * writing to the cache. The copy-on-write test runs unguarded, after a canary.
 */
export async function veilIn(dir, cmd, { guard = true, ...options } = {}) {
  if (!guard) return veil(['do', '--rootfs', dir, '--', ...cmd], options);
  const point = mkdtempSync(join(tmpdir(), 'vguard-'));
  try {
    const wrap = [
      'unshare', '--mount', '--propagation', 'private', '--',
      '/bin/sh', '-c', 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && exec "$@"', 'guard', dir, point,
    ];
    return await veil(['do', '--rootfs', point, '--', ...cmd], { ...options, wrap });
  } finally {
    rmSync(point, { recursive: true, force: true });
  }
}

// What the native run sets up in its own mount, UTS and PID namespaces,
// so that the command sees what `veil do` gives it: the rootfs under a
// copy-on-write overlay whose upper layer is a tmpfs (nothing reaches the
// host tree), a fresh /proc, the sentry's /dev entries, hostname `veil`,
// the command as PID 1 with cwd / and the same environment.
const NATIVE_SETUP = String.raw`
set -eu
R=$1 D=$2 ROOT=$3
shift 3
mount -t tmpfs -o mode=0755 veil-native "$D"
mkdir "$D/upper" "$D/work" "$D/root"
if [ "$ROOT" = overlay ]; then
  mount -t overlay overlay -o "lowerdir=$R,upperdir=$D/upper,workdir=$D/work" "$D/root"
else
  mount --bind "$R" "$D/root"
  mount -o remount,bind,ro "$D/root"
fi
mount -t proc proc "$D/root/proc"
mount -t tmpfs -o mode=0755 dev "$D/root/dev"
for n in null zero full random urandom tty; do
  touch "$D/root/dev/$n"; mount --bind "/dev/$n" "$D/root/dev/$n"
done
ln -s /proc/self/fd "$D/root/dev/fd"
ln -s /proc/self/fd/0 "$D/root/dev/stdin"
ln -s /proc/self/fd/1 "$D/root/dev/stdout"
ln -s /proc/self/fd/2 "$D/root/dev/stderr"
mkdir "$D/root/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$D/root/dev/pts"
ln -s pts/ptmx "$D/root/dev/ptmx"
hostname veil
exec chroot "$D/root" "$@"
`;

/**
 * Runs CMD natively (chroot into DIR, as root) in the environment `veil do`
 * gives it; resolves like veil(): { status (shell status), signal, stdout, stderr }.
 * root: 'overlay' (writable, copy-on-write like the sandbox's root; but an
 * overlay shows merged directories, / among them, with nlink 1 and its
 * upper layer's size) or 'readonly' (a read-only bind mount of DIR: the
 * directories' own attributes, for listings of untouched directories).
 */
export function native(dir, cmd, { input, timeoutMs = 120000, root = 'overlay' } = {}) {
  const work = mkdtempSync(join(tmpdir(), 'vnative-'));
  const env = Object.fromEntries(doEnv().map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return new Promise((resolve, reject) => {
    const child = spawn(
      'unshare',
      ['--mount', '--uts', '--pid', '--fork', '--kill-child', '--propagation', 'private', '--', '/bin/sh', '-c', NATIVE_SETUP, 'native', dir, work, root, ...cmd],
      { env, cwd: '/', stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`native ${cmd.join(' ')} timed out after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      rmSync(work, { recursive: true, force: true });
      // unshare --fork re-raises the child's death signal on itself.
      const status = signal ? 128 + osConstants.signals[signal] : code;
      resolve({ status, signal: null, stdout, stderr });
    });
  });
}

/**
 * Runs CMD natively, then in the sandbox, and asserts the same shell status
 * and the same stdout (after `normalize`, which must only remove what
 * legitimately differs). `expectStatus` guards against a comparison that
 * passes because both sides failed the same way. Returns both results.
 */
export async function assertSameAsNative(dir, cmd, { input, timeoutMs = 60000, normalize = (s) => s, expectStatus = 0, root, guard = true } = {}) {
  const outside = await native(dir, cmd, { input, timeoutMs, root });
  assert.equal(outside.status, expectStatus, `the native run itself failed (test bug?):\n${outside.stdout}\n${outside.stderr}`);
  const inside = await veilIn(dir, cmd, { input, timeoutMs, guard });
  assert.deepEqual(
    { status: inside.status, stdout: normalize(inside.stdout) },
    { status: outside.status, stdout: normalize(outside.stdout) },
    `veil and native differ\n--- veil stderr:\n${inside.stderr}--- native stderr:\n${outside.stderr}`,
  );
  return { inside, outside };
}

/** `bash -c SCRIPT`, natively and in the sandbox: see assertSameAsNative. */
export const assertBashSameAsNative = (dir, script, options) => assertSameAsNative(dir, ['/bin/bash', '-c', script], options);

/**
 * A byte-for-byte fingerprint of the tree at DIR: one line per entry with
 * its type, mode, owner, size, mtime, and its content hash or link target.
 */
export function treeListing(dir) {
  const lines = [];
  const walk = (rel) => {
    const path = rel ? join(dir, rel) : dir;
    const st = lstatSync(path, { bigint: true });
    let what = '';
    if (st.isFile()) what = createHash('sha256').update(readFileSync(path)).digest('hex');
    else if (st.isSymbolicLink()) what = `-> ${readlinkSync(path)}`;
    lines.push(`${rel || '.'} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeNs} ${st.nlink} ${what}`);
    if (st.isDirectory()) for (const name of readdirSync(path).sort()) walk(rel ? join(rel, name) : name);
  };
  walk('');
  return lines;
}

/** Host processes descended from PID, as "pid starttime" (stable identities). */
export function descendants(pid) {
  const children = new Map();
  const start = new Map();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      start.set(Number(name), fields[19]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      // Gone while we looked.
    }
  }
  const found = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length) {
    const p = queue.shift();
    found.push(`${p} ${start.get(p)}`);
    queue.push(...(children.get(p) ?? []));
  }
  return found;
}

/** Those of IDENTITIES ("pid starttime", from descendants()) still alive. */
export function stillAlive(identities) {
  return identities.filter((id) => {
    const [pid, starttime] = id.split(' ');
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] === starttime;
    } catch {
      return false;
    }
  });
}

// ---------------------------------------------------------------------------
// The OCI lifecycle: bundles, a private --root, and a CLI runner whose
// stdout/stderr are files, because a sandbox started by `create` keeps
// (its copies of) them open long after the CLI exits.

import * as ociFs from 'node:fs';
const { closeSync, mkdirSync, openSync, symlinkSync, copyFileSync, writeFileSync } = ociFs;

/** A bundle in its own temporary directory: rootfs with static busybox, config.json from `process`. */
export function makeBundle({ args = [busybox, 'true'], config = {}, processExtra = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'vtest-bundle-'));
  mkdirSync(join(dir, 'rootfs', 'bin'), { recursive: true });
  copyFileSync(busybox, join(dir, 'rootfs', 'bin', 'busybox'));
  symlinkSync('busybox', join(dir, 'rootfs', 'bin', 'sh'));
  const spec = {
    ociVersion: '1.0.2',
    process: { terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin'], cwd: '/', ...processExtra },
    root: { path: 'rootfs', readonly: true },
    hostname: 'oci-test',
    ...config,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  return { dir, spec, out: join(dir, 'out.txt'), err: join(dir, 'err.txt'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A fresh --root directory. */
export function makeRoot() {
  return mkdtempSync(join(tmpdir(), 'vtest-root-'));
}

/**
 * For tests that drive containers under a private --root: registers a
 * beforeEach that makes a fresh root and an afterEach that deletes whatever
 * the test left (containers that joined a pod before the pod's root
 * container), removes tracked bundles, insists nothing survived, and
 * removes the root. Returns `root()`, `bundle(options)` (a makeBundle
 * removed afterwards) and `onCleanup(fn)`.
 */
export function privateRootPerTest() {
  let root;
  let cleanups = [];
  beforeEach(() => {
    startWatching();
    root = makeRoot();
    cleanups = [];
  });
  afterEach(async () => {
    const ids = readdirSync(root);
    const joined = (id) => {
      try {
        return JSON.parse(readFileSync(join(root, id, 'meta.json'), 'utf8')).sandboxId !== undefined;
      } catch {
        return false;
      }
    };
    for (const id of [...ids.filter(joined), ...ids.filter((id) => !joined(id))]) await veilOci(root, ['delete', '--force', id]);
    const left = readdirSync(root);
    // Last registered, first undone (a bundle may live in a test's directory).
    for (const c of cleanups.reverse()) c();
    await assertNothingLeft();
    assert.deepEqual(left, [], 'containers left in --root');
    rmSync(root, { recursive: true, force: true });
  });
  return {
    root: () => root,
    bundle(options) {
      const b = makeBundle(options);
      cleanups.push(b.cleanup);
      return b;
    },
    /** Runs `fn` after the test, before the check that nothing is left. */
    onCleanup(fn) {
      cleanups.push(fn);
    },
  };
}

/** Whether host process `pid` exists and is not a zombie. */
export function isAlive(pid) {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** A container id no other test (or host cgroup) uses. */
export const uniqueId = (name) => `vt-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * Runs `veil --root ROOT ARGS…` with stdout/stderr in files (`stdout`/`stderr`
 * paths, or private ones), resolving when the CLI exits. `onSpawn(child)`
 * may signal it.
 */
export function veilOci(root, args, { stdout, stderr, input = '/dev/null', env = {}, timeoutMs = 30000, onSpawn } = {}) {
  const scratch = mkdtempSync(join(tmpdir(), 'vtest-cli-'));
  const outPath = stdout ?? join(scratch, 'out');
  const errPath = stderr ?? join(scratch, 'err');
  const fds = [openSync(input, 'r'), openSync(outPath, 'a'), openSync(errPath, 'a')];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, '--root', root, ...args], {
      env: { ...process.env, ...env, VEIL_TEST_MARK: mark, TMPDIR: privateTmp },
      stdio: fds,
    });
    fds.forEach((fd) => closeSync(fd));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`veil ${args.join(' ')} timed out`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (status, signal) => {
      clearTimeout(timer);
      const read = (p) => (ociFs.existsSync(p) ? readFileSync(p, 'utf8') : '');
      const result = { status, signal, stdout: stdout ? '' : read(outPath), stderr: stderr ? '' : read(errPath), pid: child.pid };
      rmSync(scratch, { recursive: true, force: true });
      resolve(result);
    });
    onSpawn?.(child);
  });
}

/** Polls `fn` until it returns truthy (or throws after `timeoutMs`). */
export async function eventually(fn, timeoutMs = 5000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
