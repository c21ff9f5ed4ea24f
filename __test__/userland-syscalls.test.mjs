// Issue 3: `veil syscalls` prints the sentry's own syscall table, so the
// coverage report cannot drift from what the kernel serves.

import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertNothingLeft, startWatching, testRootfs, veil } from './helpers.mjs';

beforeEach(startWatching);
afterEach(assertNothingLeft);

const LINE = /^ *(\d+) {2}(\w+) +(supported|partial: .+|ENOSYS)$/;

/** number → { name, level } from `veil syscalls`. */
async function table() {
  const r = await veil(['syscalls']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const rows = new Map();
  for (const line of r.stdout.trimEnd().split('\n')) {
    const m = LINE.exec(line);
    assert.ok(m, `malformed line: ${JSON.stringify(line)}`);
    const nr = Number(m[1]);
    assert.ok(!rows.has(nr), `syscall ${nr} listed twice`);
    rows.set(nr, { name: m[2], level: m[3] });
  }
  return rows;
}

test('veil syscalls lists every x86-64 syscall with its support level', async () => {
  const rows = await table();
  for (let nr = 0; nr <= 334; nr++) assert.ok(rows.has(nr), `syscall ${nr} is missing`);
  const known = { 0: 'read', 39: 'getpid', 57: 'fork', 110: 'getppid', 174: 'create_module', 180: 'nfsservctl', 231: 'exit_group', 246: 'kexec_load', 334: 'rseq', 435: 'clone3' };
  for (const [nr, name] of Object.entries(known)) assert.equal(rows.get(Number(nr))?.name, name, `syscall ${nr}`);
  assert.equal(rows.get(110).level, 'supported');
  assert.equal(rows.get(39).level, 'supported');
  // Removed from Linux long ago: ENOSYS there too.
  assert.equal(rows.get(174).level, 'ENOSYS');
  assert.equal(rows.get(180).level, 'ENOSYS');
  // Nothing a container may do: EPERM, as Linux answers in a container.
  assert.equal(rows.get(246).level, 'supported');
  assert.ok([...rows.values()].some((r) => r.level.startsWith('partial: ')), 'no partial entry with a note');
});

test('veil syscalls names each number as Linux\'s <asm/unistd_64.h> does', async (t) => {
  // The rootfs's kernel headers (linux-libc-dev, pulled in by libc6-dev), else the host's.
  const { dir, skip } = testRootfs();
  const header = [
    ...(skip ? [] : [join(dir, 'usr/include/x86_64-linux-gnu/asm/unistd_64.h')]),
    '/usr/include/x86_64-linux-gnu/asm/unistd_64.h',
  ].find((p) => existsSync(p));
  if (!header) return t.skip('no <asm/unistd_64.h> (the Debian test rootfs has one)');
  const linux = new Map([...readFileSync(header, 'utf8').matchAll(/^#define __NR_(\w+) (\d+)$/gm)].map((m) => [Number(m[2]), m[1]]));
  assert.ok(linux.size > 300, header);
  const rows = await table();
  const mismatches = [...linux].filter(([nr, name]) => rows.get(nr)?.name !== name).map(([nr, name]) => `${nr}: linux ${name}, veil ${rows.get(nr)?.name}`);
  assert.deepEqual(mismatches, []);
});
