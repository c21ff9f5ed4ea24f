// The legacy ways into the kernel a 64-bit process may still take get one
// answer on every platform: `int $0x80` returns ENOSYS (the sandbox serves
// only the x86-64 table), `sysenter` raises SIGILL, and the vsyscall page's
// gettimeofday, time and getcpu entries work as Linux's emulation makes
// them work, while reading the page or calling into the middle of an entry
// faults.

import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNothingLeft, repo, startWatching, veilDo } from './helpers.mjs';

beforeEach(startWatching);
afterEach(assertNothingLeft);

let work;
let program;
let built = null;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'vlegacy-'));
  program = join(work, 'legacy');
  const cc = spawnSync('gcc', ['-static', '-O2', '-Wall', '-o', program, join(repo, '__test__', 'programs', 'legacy.c')], { encoding: 'utf8' });
  built = cc.error ? cc.error.message : cc.status === 0 ? null : cc.stderr;
});
after(() => rmSync(work, { recursive: true, force: true }));

const expected = {
  int80: 'int80: rax -38',
  sysenter: 'sysenter: signal Illegal instruction',
  vgettimeofday: 'vgettimeofday: rax 0, close to time(): 1',
  vtime: 'vtime: same value stored 1, close to time(): 1',
  vgetcpu: 'vgetcpu: rax 0, cpu in range 1, node 0',
  vread: 'vread: signal Segmentation fault',
  vmiddle: 'vmiddle: signal Segmentation fault',
};

describe('legacy system-call entries', () => {
  for (const [probe, line] of Object.entries(expected)) {
    test(probe, async (t) => {
      if (built !== null) return t.skip(`cannot build the test program with gcc -static: ${built}`);
      const r = await veilDo([program, probe]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `${line}\n`);
    });
  }
});
