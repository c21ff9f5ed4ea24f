// Issue 4, item 5: the sandbox process is confined (namespaces, an empty
// read-only root, nobody with one capability, no_new_privs, seccomp), and a
// gofer per container hands it the spec's mounts, then is gone.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busybox, eventually, privateRootPerTest, repo, uniqueId, veilOci } from './helpers.mjs';

const perTest = privateRootPerTest();
const bundle = (options) => perTest.bundle(options);

const v = (args, options) => veilOci(perTest.root(), args, options);

/** Creates a container from `b` and returns its sandbox pid. */
async function create(b, id, globals = []) {
  const r = await veilOci(perTest.root(), [...globals, 'create', '--bundle', b.dir, id], { stdout: b.out, stderr: b.err });
  assert.equal(r.status, 0, readFileSync(b.err, 'utf8'));
  return JSON.parse((await v(['state', id])).stdout).pid;
}

/** `Key:\tvalue` lines of /proc/PID/status. */
function status(pid) {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
  );
}

const ns = (pid, kind) => readlinkSync(`/proc/${pid}/ns/${kind}`);

const sandboxBinary = process.env.VEIL_SANDBOX_BINARY ?? join(repo, 'npm', 'linux-x64-gnu', 'veil-sandbox');

/** Host processes running this checkout's `veil-sandbox gofer`. */
function ourGofers() {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').slice(0, 2).join(' ') === `${sandboxBinary} gofer`;
      } catch {
        return false;
      }
    });
}

const CAP_DAC_OVERRIDE = 1n << 1n;
const CAP_SYS_PTRACE = 1n << 19n;

describe('the sandbox process', () => {
  test('runs as nobody in namespaces of its own, with one capability, no_new_privs, seccomp and an empty read-only root', async () => {
    const b = bundle({ args: [busybox, 'sleep', '30'] });
    const id = uniqueId('iso');
    const pid = await create(b, id, ['--platform', 'ptrace']);

    const s = status(pid);
    assert.equal(s.NoNewPrivs, '1');
    assert.equal(s.Seccomp, '2', 'the sentry filter is installed before any application code');
    assert.deepEqual(s.Uid.split(/\s+/), ['65534', '65534', '65534', '65534']);
    assert.deepEqual(s.Gid.split(/\s+/), ['65534', '65534', '65534', '65534']);
    assert.equal(s.Groups, '');
    // ptrace needs CAP_SYS_PTRACE in its own user namespace to attach to its stubs.
    const caps = CAP_DAC_OVERRIDE | CAP_SYS_PTRACE;
    for (const set of ['CapEff', 'CapPrm', 'CapBnd']) assert.equal(BigInt(`0x${s[set]}`), caps, set);
    assert.equal(BigInt(`0x${s.CapInh}`), 0n);
    assert.equal(BigInt(`0x${s.CapAmb}`), 0n);
    assert.deepEqual(readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/), ['0', '0', '4294967295']);

    for (const kind of ['user', 'mnt', 'ipc', 'uts', 'net', 'pid']) assert.notEqual(ns(pid, kind), ns('self', kind), `${kind} namespace`);
    assert.equal(s.NSpid.split(/\s+/).at(-1), '1', 'the sentry is PID 1 of its PID namespace, its stubs inside it');

    // Not dumpable: another host process running as nobody cannot look inside (or trace it).
    const peek = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'cat', `/proc/${pid}/environ`], { encoding: 'utf8' });
    assert.notEqual(peek.status, 0);
    assert.match(peek.stderr, /Permission denied/);

    assert.deepEqual(readdirSync(`/proc/${pid}/root`), [], 'the root is empty');
    assert.throws(() => writeFileSync(`/proc/${pid}/root/x`, ''), /EROFS/, 'and read-only');
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes('veil-root'), 'the empty root exists only in the sandbox');

    await eventually(() => ourGofers().length === 0, 2000, 'the gofer to be gone once the sandbox has its mounts');
    assert.equal((await v(['delete', '--force', id])).status, 0);
  });

  test('with --platform kvm: PID 1 of a new PID namespace, without CAP_SYS_PTRACE', { skip: kvmSkip() }, async () => {
    // The init catches TERM: a container's PID 1 ignores the signals it has no handler for.
    const b = bundle({ args: [busybox, 'sh', '-c', "trap 'exit 7' TERM; while :; do sleep 1; done"] });
    const id = uniqueId('isokvm');
    const pid = await create(b, id, ['--platform', 'kvm']);
    const s = status(pid);
    assert.equal(s.NSpid.split(/\s+/).at(-1), '1');
    assert.notEqual(ns(pid, 'pid'), ns('self', 'pid'));
    assert.equal(BigInt(`0x${s.CapEff}`), CAP_DAC_OVERRIDE);
    assert.equal(s.Seccomp, '2');
    // Signals from outside still reach it (it forwards them to the init).
    assert.equal((await v(['start', id])).status, 0);
    process.kill(pid, 'SIGTERM');
    const w = await v(['wait', id]);
    assert.deepEqual(JSON.parse(w.stdout), { id, exitStatus: 7 });
    assert.equal((await v(['delete', id])).status, 0);
  });

  test("joins the spec's network namespace", async () => {
    // A process holding a fresh network namespace, as an engine's pause container would.
    const holder = spawn('unshare', ['--net', busybox, 'sleep', '60'], { stdio: 'ignore' });
    perTest.onCleanup(() => holder.kill('SIGKILL'));
    const path = `/proc/${holder.pid}/ns/net`;
    await eventually(() => ns(holder.pid, 'net') !== ns('self', 'net'), 5000, 'unshare');
    const b = bundle({ args: [busybox, 'sleep', '30'], config: { linux: { namespaces: [{ type: 'network', path }, { type: 'pid' }] } } });
    const pid = await create(b, uniqueId('netns'));
    assert.equal(ns(pid, 'net'), ns(holder.pid, 'net'));
    assert.notEqual(ns(pid, 'user'), ns('self', 'user'));
  });
});

function kvmSkip() {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return false;
  } catch {
    return 'no usable /dev/kvm';
  }
}

describe('the gofer and the mounts it hands over', () => {
  /** A bundle whose rootfs holds a 0600 root file and a non-root user, with bind and tmpfs mounts. */
  function mountBundle(args, annotations = undefined) {
    const host = mkdtempSync(join(tmpdir(), 'vtest-mounts-'));
    perTest.onCleanup(() => rmSync(host, { recursive: true, force: true }));
    mkdirSync(join(host, 'ro'));
    writeFileSync(join(host, 'ro', 'f'), 'from the host\n');
    mkdirSync(join(host, 'rw'));
    writeFileSync(join(host, 'file'), 'one file\n');
    const b = bundle({
      args,
      config: {
        annotations,
        mounts: [
          { destination: '/proc', type: 'proc', source: 'proc' },
          { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755'] },
          { destination: '/data/ro', type: 'bind', source: join(host, 'ro'), options: ['rbind', 'ro'] },
          { destination: '/rw', type: 'none', source: join(host, 'rw'), options: ['bind'] },
          { destination: '/etc/one', type: 'bind', source: join(host, 'file'), options: ['bind', 'ro'] },
          { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['mode=1777'] },
          { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue' },
        ],
      },
    });
    const rootfs = join(b.dir, 'rootfs');
    writeFileSync(join(rootfs, 'secret'), 'top secret\n');
    chmodSync(join(rootfs, 'secret'), 0o600);
    mkdirSync(join(rootfs, 'etc'));
    writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000:user:/:/bin/sh\n');
    writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nuser:x:1000:\n');
    symlinkSync('busybox', join(rootfs, 'bin', 'su'));
    return { b, host };
  }

  async function run(b) {
    const id = uniqueId('mounts');
    await create(b, id);
    assert.equal((await v(['start', id])).status, 0);
    const w = JSON.parse((await v(['wait', id])).stdout);
    assert.equal((await v(['delete', id])).status, 0);
    return { w, out: readFileSync(b.out, 'utf8'), err: readFileSync(b.err, 'utf8') };
  }

  test("a 0600 root file: the container's root reads it, its non-root user gets EACCES", async () => {
    const script = [
      'cat /secret',
      'su user -c "id -u; cat /secret"; echo "user: $?"',
    ].join('\n');
    const { b } = mountBundle([busybox, 'sh', '-c', script]);
    const { w, out, err } = await run(b);
    assert.equal(w.exitStatus, 0, err);
    assert.equal(out, 'top secret\n1000\nuser: 1\n');
    assert.match(err, /cat: can't open '\/secret': Permission denied/);
    assert.equal(statSync(join(b.dir, 'rootfs', 'secret')).mode & 0o777, 0o600, 'the host file is untouched');
  });

  test('bind mounts (read-only, writable, one file) and tmpfs land where the spec says', async () => {
    const script = [
      'cat /data/ro/f /etc/one',
      'echo x > /data/ro/g || echo "ro: refused"',
      'echo written > /rw/new && echo "rw: ok"',
      'echo t > /scratch/t && cat /scratch/t',
      'ls -ld /scratch | cut -c1-10',
      'grep -c " /data/ro " /proc/mounts',
    ].join('\n');
    const { b, host } = mountBundle([busybox, 'sh', '-c', script]);
    const { w, out, err } = await run(b);
    assert.equal(w.exitStatus, 0, err);
    assert.equal(out, 'from the host\none file\nro: refused\nrw: ok\nt\ndrwxrwxrwt\n1\n');
    assert.match(err, /Read-only file system/);
    assert.equal(readFileSync(join(host, 'rw', 'new'), 'utf8'), 'written\n', 'a writable bind mount reaches the host');
    assert.deepEqual(readdirSync(join(host, 'ro')), ['f'], 'a read-only one does not');
    assert.deepEqual(readdirSync(join(b.dir, 'rootfs')).sort(), ['bin', 'etc', 'secret'], 'no mount point was made on the host');
  });

  test('a container joining a pod gets its root and mounts from a gofer of its own', async () => {
    const podId = uniqueId('pod');
    const cri = (type) => ({ 'io.kubernetes.cri.container-type': type, 'io.kubernetes.cri.sandbox-id': podId });
    const pod = bundle({ args: [busybox, 'sleep', '1000'], config: { annotations: cri('sandbox') } });
    await create(pod, podId);
    assert.equal((await v(['start', podId])).status, 0);
    const { b } = mountBundle([busybox, 'sh', '-c', 'cat /secret /data/ro/f; ls -ld /scratch | cut -c1-10'], cri('container'));
    const { w, out, err } = await run(b);
    assert.equal(w.exitStatus, 0, err);
    assert.equal(out, 'top secret\nfrom the host\ndrwxrwxrwt\n');
    await eventually(() => ourGofers().length === 0, 2000, 'no gofer left');
  });

  test('a bad mount is a one-line error naming it, and nothing is left', async () => {
    const b = bundle({ args: [busybox, 'true'], config: { mounts: [{ destination: '/x', type: 'bind', source: '/nonexistent-veil-source', options: ['bind'] }] } });
    const id = uniqueId('badmount');
    const r = await v(['create', '--bundle', b.dir, id], { stdout: b.out, stderr: b.err });
    assert.notEqual(r.status, 0);
    const all = readFileSync(b.err, 'utf8') + r.stderr;
    assert.match(all, /mounts\[0\]\.source "\/nonexistent-veil-source": No such file or directory/);
    assert.deepEqual(readdirSync(perTest.root()), []);
    assert.deepEqual(ourGofers(), []);
  });
});
