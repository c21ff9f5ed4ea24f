// Issue 2, end to end: `veil do` runs static busybox on the sentry.

import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNothingLeft, busybox, namesFromLsLong, startWatching, veil, veilDo } from './helpers.mjs';

beforeEach(startWatching);
afterEach(assertNothingLeft);

describe('veil do runs static busybox', () => {
  test('echo', async () => {
    const r = await veilDo([busybox, 'echo', 'hello', 'world']);
    assert.equal(r.stdout, 'hello world\n');
    assert.equal(r.status, 0, r.stderr);
  });

  test('a command name is looked up in the spec PATH', async () => {
    const r = await veilDo(['busybox', 'echo', 'found']);
    assert.equal(r.stdout, 'found\n');
    assert.equal(r.status, 0, r.stderr);
  });

  test('cat of a host file (the root is the host /)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtest-cat-'));
    try {
      const file = join(dir, 'greeting.txt');
      const text = 'line one\nline two, with bytes \u00e9\n'.repeat(500);
      writeFileSync(file, text);
      const r = await veilDo([busybox, 'cat', file]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, text);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('stdin is the caller\'s', async () => {
    const r = await veilDo([busybox, 'cat'], { input: 'from the host\n' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'from the host\n');
  });

  test('ls -l / lists the host root', async () => {
    const r = await veilDo([busybox, 'ls', '-l', '/']);
    assert.equal(r.status, 0, r.stderr);
    const inside = namesFromLsLong(r.stdout).sort();
    const host = readdirSync('/').filter((n) => !n.startsWith('.')).sort();
    assert.deepEqual(inside, host);
  });

  test('a pipeline: fork, pipe, dup2, execve, wait4', async () => {
    const r = await veilDo([busybox, 'sh', '-c', 'echo a | tr a b']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'b\n');
  });

  test('the exit status is the command\'s', async () => {
    const r = await veilDo([busybox, 'sh', '-c', 'sleep 0.1; exit 3']);
    assert.equal(r.status, 3, r.stderr);
  });

  test('death by signal exits 128+N', async () => {
    const r = await veilDo([busybox, 'sh', '-c', 'kill -TERM $$']);
    assert.equal(r.status, 143, r.stderr);
  });

  test('SIGTERM to the CLI is forwarded to the container', async () => {
    // The init catches it: a PID namespace's init ignores what it does not catch.
    const script = 'trap "echo got TERM; exit 5" TERM; echo ready; while :; do sleep 0.1; done';
    const r = await veilDo([busybox, 'sh', '-c', script], {
      onSpawn: (child) => child.stdout.on('data', (d) => String(d).includes('ready') && child.kill('SIGTERM')),
    });
    assert.equal(r.signal, null, 'the CLI itself must not die of the signal');
    assert.equal(r.status, 5, r.stderr);
    assert.equal(r.stdout, 'ready\ngot TERM\n');
  });
});

describe('the sentry is a kernel, not a pass-through', () => {
  test('uname -r is the sentry\'s release', async () => {
    const r = await veilDo([busybox, 'uname', '-r']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\S+\n$/);
    assert.notEqual(r.stdout.trim(), release());
  });

  test('the first process is PID 1 and its parent 0', async () => {
    const r = await veilDo([busybox, 'sh', '-c', 'echo $$ $PPID']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '1 0\n');
  });

  test('hostname is the spec\'s', async () => {
    const byDefault = await veilDo([busybox, 'hostname']);
    assert.equal(byDefault.stdout, 'veil\n', byDefault.stderr);
    const chosen = await veil(['do', '--hostname', 'inside-test', '--', busybox, 'hostname']);
    assert.equal(chosen.stdout, 'inside-test\n', chosen.stderr);
  });

  test('/proc/self is the sandbox\'s', async () => {
    const self = await veilDo([busybox, 'readlink', '/proc/self']);
    assert.equal(self.status, 0, self.stderr);
    assert.equal(self.stdout, '1\n');

    const listing = await veilDo([busybox, 'ls', '/proc']);
    assert.equal(listing.status, 0, listing.stderr);
    const pids = listing.stdout.split(/\s+/).filter((n) => /^\d+$/.test(n)).map(Number);
    assert.ok(pids.includes(1), `no pid 1 in /proc: ${listing.stdout}`);
    assert.ok(pids.every((p) => p < 100), `host pids visible in /proc: ${pids}`);
  });

  test('--strace prints each syscall as the sentry served it', async () => {
    const r = await veil(['do', '--strace', '--', busybox, 'sh', '-c', 'echo $PPID']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '0\n');
    assert.match(r.stderr, /getppid\(\) = 0\b/);
    assert.match(r.stderr, /write\(1, .*\) = 2\b/);
  });

  test('an unimplemented syscall gets ENOSYS and is reported once, by name, in the debug log only', async () => {
    // glibc registers rseq at every exec; the sentry does not implement it.
    const cmd = ['do', '--', busybox, 'sh', '-c', `${busybox} true; ${busybox} true; echo done`];
    const quiet = await veil(cmd);
    assert.equal(quiet.status, 0, quiet.stderr);
    assert.deepEqual([quiet.stdout, quiet.stderr], ['done\n', ''], 'nothing written into the application\'s stderr');

    const r = await veil(['--strace', ...cmd]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'done\n');
    const served = r.stderr.match(/rseq\(.*\) = -1 ENOSYS \(38\)/g) ?? [];
    assert.ok(served.length >= 3, `rseq should fail with ENOSYS at each of the 3 execs:\n${r.stderr}`);
    const reports = r.stderr.match(/msg="veil: unsupported syscall rseq \(334\)"$/gm) ?? [];
    assert.equal(reports.length, 1, r.stderr);

    const dir = mkdtempSync(join(tmpdir(), 'vtest-log-'));
    try {
      const log = join(dir, 'log.json');
      const j = await veil(['--log', log, '--log-format', 'json', ...cmd]);
      assert.equal(j.status, 0, j.stderr);
      assert.equal(j.stderr, '');
      const records = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(records.filter((x) => /unsupported/.test(x.msg)).map((x) => [x.level, x.msg]), [['debug', 'veil: unsupported syscall rseq (334)']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
