// The addon's contract, checked without the sentry: busybox sh stands in
// for veil-sandbox and reports what it was given.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repo } from './helpers.mjs';

const { addon } = createRequire(import.meta.url)(join(repo, 'dist', 'native.js'));
const native = addon();

/** Spawns `busybox sh -c SCRIPT` via spawnSandbox with file-backed stdio. */
function spawnShell(script, { spec = '{"ociVersion":"1.0.2"}', dieWithParent = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'vtest-addon-'));
  const stdio = [openSync('/dev/null', 'r'), openSync(join(dir, 'out'), 'w'), openSync(join(dir, 'err'), 'w')];
  const child = native.spawnSandbox({
    binary: '/bin/busybox',
    args: ['sh', '-c', script, 'sandbox'],
    spec,
    stdio,
    dieWithParent,
  });
  stdio.forEach((fd) => closeSync(fd));
  // The gofer is veil-sandbox's own; busybox has no such applet and exits.
  native.waitPid(child.goferPid).catch(() => undefined);
  return {
    ...child,
    out: () => readFileSync(join(dir, 'out'), 'utf8'),
    err: () => readFileSync(join(dir, 'err'), 'utf8'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A control frame as busybox printf escapes: 4-byte LE length, then JSON. */
function frame(json) {
  const n = Buffer.byteLength(json);
  const len = [n & 255, (n >> 8) & 255, 0, 0].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
  return `printf '${len}%s' '${json}'`;
}

test('donates control, spec, stdio and the gofer socket at 3..8 and nothing else', async () => {
  const spec = '{"ociVersion":"1.0.2","hostname":"h"}';
  // `ls` runs alone (no pipeline): a shell building a pipeline holds its
  // pipe ends for a moment, and the listing would catch them.
  const sb = spawnShell('exec >&6; echo "$*"; ls /proc/$$/fd; cat <&4', {
    spec,
    dieWithParent: true,
  });
  try {
    assert.deepEqual(await native.waitPid(sb.pid), { exitCode: 0 });
    const lines = sb.out().split('\n');
    const [args, specText] = [lines[0], lines[lines.length - 1]];
    const fds = lines.slice(1, -1).map(Number).sort((a, b) => a - b);
    assert.equal(args, '--control-fd 3 --spec-fd 4 --stdio-fds 5,6,7 --mounts-fd 8 --setup-root --die-with-parent');
    assert.deepEqual(fds, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(specText, spec);
  } finally {
    native.closeFd(sb.controlFd);
    sb.cleanup();
  }
});

test('the sandbox gets default signal dispositions, an empty mask and its own session', async () => {
  const sb = spawnShell(
    // exec: a shell ignores SIGQUIT itself but restores it for what it runs.
    'read -r _ _ _ _ _ sid _ </proc/$$/stat; [ "$sid" = $$ ] && echo own-session >&6; exec grep -E "^Sig(Blk|Ign)" /proc/self/status >&6',
  );
  try {
    await native.waitPid(sb.pid);
    assert.equal(sb.out(), 'own-session\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  } finally {
    native.closeFd(sb.controlFd);
    sb.cleanup();
  }
});

test('controlCall sends a framed request and resolves with the framed response', async () => {
  const reply = '{"type":"waited","exitCode":3,"signal":null}';
  const sb = spawnShell(`head -c 21 <&3 >&6; ${frame(reply)} >&3; cat <&3 >/dev/null`);
  try {
    const response = await native.controlCall(sb.controlFd, '{"method":"wait"}');
    assert.deepEqual(JSON.parse(response), JSON.parse(reply));
    native.closeFd(sb.controlFd);
    assert.deepEqual(await native.waitPid(sb.pid), { exitCode: 0 });
    assert.equal(sb.out().slice(4), '{"method":"wait"}');
  } finally {
    sb.cleanup();
  }
});

test('a malformed request throws at the call site', () => {
  assert.throws(() => native.controlCall(-1, '{"method":"reboot"}'), /invalid control request/);
  assert.throws(() => native.controlSend(-1, 'not json'), /invalid control request/);
});

test('closing the control socket is end-of-file for the sandbox, even with a read pending', async () => {
  const sb = spawnShell('cat <&3 >/dev/null; exit 42');
  try {
    const pending = native.controlRecv(sb.controlFd);
    await new Promise((r) => setTimeout(r, 100));
    native.closeFd(sb.controlFd);
    await assert.rejects(pending, /closed|Bad file|socket/);
    assert.deepEqual(await native.waitPid(sb.pid), { exitCode: 42 });
  } finally {
    sb.cleanup();
  }
});

test('kill and waitPid report death by signal', async () => {
  const sb = spawnShell('exec sleep 10');
  try {
    native.kill(sb.pid, 15);
    assert.deepEqual(await native.waitPid(sb.pid), { signal: 15 });
    assert.throws(() => native.kill(sb.pid, 0), /ESRCH|No such process/);
  } finally {
    native.closeFd(sb.controlFd);
    sb.cleanup();
  }
});

test('a missing sandbox binary is reported by name', () => {
  assert.throws(
    () => native.spawnSandbox({ binary: '/nonexistent/veil-sandbox', args: [], spec: '{}', stdio: [0, 1, 2] }),
    /\/nonexistent\/veil-sandbox/,
  );
});
