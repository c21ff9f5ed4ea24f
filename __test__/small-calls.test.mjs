// The small system-call families (membarrier, personality, the mlock
// family, mincore, kcmp) answer in the sandbox as they do natively, and
// the calls that act on the host machine (its clock, reboot, I/O ports,
// swap, modules) fail as Linux fails them in a container: EPERM after
// Linux's own argument checks, never ENOSYS.

import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNothingLeft, repo, startWatching, veil } from './helpers.mjs';

beforeEach(startWatching);
afterEach(assertNothingLeft);

let work;
let prog;
let built = null;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'vsmall-'));
  prog = join(work, 'small-calls');
  const cc = spawnSync('gcc', ['-static', '-O2', '-Wall', '-o', prog, join(repo, '__test__', 'programs', 'small-calls.c')], { encoding: 'utf8' });
  built = cc.error ? cc.error.message : cc.status === 0 ? null : cc.stderr;
});
after(() => rmSync(work, { recursive: true, force: true }));

describe('small system-call families', () => {
  const skip = () => (built === null ? false : `cannot build the test program with gcc -static: ${built}`);

  test('membarrier, personality, mlock, mincore and kcmp answer as natively', async (t) => {
    if (skip()) return t.skip(skip());
    const nat = spawnSync(prog, ['safe'], { encoding: 'utf8' });
    assert.equal(nat.status, 0, nat.stderr);
    assert.match(nat.stdout, /membarrier register: 0\nmembarrier private: 0\n/);
    const r = await veil(['do', '--', prog, 'safe']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, nat.stdout);
  });

  test('calls that act on the host machine fail with EPERM, as in a container', async (t) => {
    if (skip()) return t.skip(skip());
    // Not run natively: as the host's root it would set the host's clock.
    const r = await veil(['do', '--', prog, 'privileged']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        'clock_settime: EPERM',
        'clock_settime monotonic: EINVAL',
        'settimeofday: EPERM',
        'reboot bad magic: EINVAL',
        'reboot: EPERM',
        'iopl: EPERM',
        'swapoff: EPERM',
        'delete_module: EPERM',
        '',
      ].join('\n'),
    );
  });
});
