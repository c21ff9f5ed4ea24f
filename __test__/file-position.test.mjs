// The caller's stdio redirected to and from files: every call that uses a
// file position (read/write and their vector and positional forms,
// sendfile, copy_file_range, splice, lseek) moves the one position the
// open file description shares with the caller, across the processes of
// one shell, exactly as the same script does natively.

import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNothingLeft, repo, startWatching, testRootfs, veil } from './helpers.mjs';

beforeEach(startWatching);
afterEach(assertNothingLeft);

let work;
let fpos;
let built = null;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'vfpos-'));
  fpos = join(work, 'fpos');
  const cc = spawnSync('gcc', ['-static', '-O2', '-Wall', '-o', fpos, join(repo, '__test__', 'programs', 'fpos.c')], { encoding: 'utf8' });
  built = cc.error ? cc.error.message : cc.status === 0 ? null : cc.stderr;
});
after(() => rmSync(work, { recursive: true, force: true }));

/** argv that runs the rest with stdin from IN and stdout to OUT (same pid). */
const redirect = (input, output) => ['/bin/sh', '-c', 'i=$1 o=$2; shift 2; exec "$@" < "$i" > "$o"', 'redirect', input, output];

/** SCRIPT under /bin/sh natively and in `veil do`, stdin from a file holding INPUT; both outputs. */
async function bothWays(script, input) {
  const inFile = join(work, 'in');
  writeFileSync(inFile, input);
  const nativeOut = join(work, 'native.out');
  const argv = [...redirect(inFile, nativeOut), '/bin/sh', '-c', script, 'sh', fpos];
  const nat = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  assert.equal(nat.status, 0, `the native run failed (test bug?): ${nat.stderr}`);
  const veilOut = join(work, 'veil.out');
  const r = await veil(['do', '--', '/bin/sh', '-c', script, 'sh', fpos], { wrap: redirect(inFile, veilOut) });
  assert.equal(r.status, 0, r.stderr);
  return { native: readFileSync(nativeOut, 'utf8'), inside: readFileSync(veilOut, 'utf8') };
}

describe('file positions shared with the caller', () => {
  const skip = () => (built === null ? false : `cannot build the test program with gcc -static: ${built}`);

  test('output: each writing call continues where the last process stopped', async (t) => {
    if (skip()) return t.skip(skip());
    const script = [
      '"$1" write write-1',
      '"$1" writev writev-2',
      '"$1" pwritev2 pwritev2-3',
      '"$1" sendfile sendfile-4',
      '"$1" copy_file_range copy_file_range-5',
      '"$1" splice splice-6',
      // Positional writes land at their offset and leave the position.
      '"$1" pwrite P 0',
      '"$1" pwritev Q 1',
      'echo echo-7',
      '"$1" position 1',
      'cat /etc/hostname /etc/debian_version',
    ].join(' && ');
    const { native, inside } = await bothWays(script, '');
    assert.match(native, /^PQite-1\nwritev-2\n/);
    assert.equal(inside, native);
  });

  test('input: each reading call starts where the last process stopped', async (t) => {
    if (skip()) return t.skip(skip());
    const script = [
      '"$1" read 4',
      '"$1" readv 4',
      '"$1" preadv2 4',
      // Positional reads take their offset and leave the position.
      '"$1" pread 4 0',
      '"$1" preadv 4 2',
      '"$1" sendfile-in 4',
      '"$1" copy_file_range-in 4',
      '"$1" splice-in 4',
      '"$1" seek-in 3',
      '"$1" position 0',
      // The shell's read takes one line; cat must not repeat it.
      'read x && echo "read: $x"',
      'cat',
    ].join(' && ');
    const input = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\nsecond line\nthird line\n';
    const { native, inside } = await bothWays(script, input);
    assert.match(native, /^abcd\|efgh\|ijkl\|abcd\|cdef\|mnop\|qrst\|uvwx\|position 27\nread: 123456789/);
    assert.equal(inside, native);
  });

  test('Debian cat (copy_file_range) appends after what the shell wrote', async (t) => {
    const { dir, skip: noRootfs } = testRootfs();
    if (noRootfs) return t.skip(noRootfs);
    const out = join(work, 'debian.out');
    const inFile = join(work, 'empty');
    writeFileSync(inFile, '');
    const r = await veil(['do', '--rootfs', dir, '--', '/bin/sh', '-c', 'echo 0123456789-first-line; cat /etc/debian_version'], { wrap: redirect(inFile, out) });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(out, 'utf8'), `0123456789-first-line\n${readFileSync(join(dir, 'etc', 'debian_version'), 'utf8')}`);
  });
});
