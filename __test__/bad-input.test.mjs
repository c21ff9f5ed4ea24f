// Issue 2, item 7: bad input fails with one line naming the problem, and
// leaves nothing behind.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { assertNothingLeft, assertOneLineError, busybox, platformUnusable, startWatching, veil, veilDo } from './helpers.mjs';

beforeEach(startWatching);
afterEach(assertNothingLeft);

test('no command', async () => {
  assertOneLineError(await veil(['do']), /no command/);
  assertOneLineError(await veil(['do', '--']), /no command/);
});

test('a command that does not exist (absolute path)', async () => {
  assertOneLineError(await veilDo(['/nonexistent/veil-test-cmd']), /\/nonexistent\/veil-test-cmd/);
});

test('a command that is not on PATH', async () => {
  assertOneLineError(await veilDo(['veil-test-no-such-cmd']), /veil-test-no-such-cmd.*not found|not found.*veil-test-no-such-cmd/i);
});

test('a file that is not an ELF executable', async () => {
  assertOneLineError(await veilDo(['/etc/hostname']), /\/etc\/hostname.*(ELF|exec format)|(ELF|exec format).*\/etc\/hostname/i);
});

test('an unknown platform', async () => {
  assertOneLineError(await veil(['do', '--platform', 'quantum', '--', busybox, 'true']), /quantum.*ptrace/);
  assertOneLineError(await veil(['--platform', 'quantum', 'do', '--', busybox, 'true']), /quantum.*ptrace/);
});

// /dev/kvm hidden behind /dev/null in a private mount namespace (needs root).
const withoutKvm = ['unshare', '-m', 'sh', '-c', 'mount --bind /dev/null /dev/kvm && exec "$@"', 'sh'];
const canHideKvm = process.getuid() === 0;

test('--platform kvm without a usable /dev/kvm', { skip: !canHideKvm && 'needs root to hide /dev/kvm' }, async () => {
  assertOneLineError(await veil(['do', '--platform', 'kvm', '--', busybox, 'true'], { wrap: withoutKvm }), /kvm platform unusable: .*KVM/);
  assertOneLineError(await veil(['do', '--', busybox, 'true'], { wrap: withoutKvm, env: { VEIL_PLATFORM: 'kvm' } }), /kvm platform unusable/);
});

test('the default platform needs no /dev/kvm, and --debug says which it chose', { skip: !canHideKvm && 'needs root to hide /dev/kvm' }, async () => {
  const r = await veil(['do', '--debug', '--', busybox, 'echo', 'hi'], { wrap: withoutKvm, env: { VEIL_PLATFORM: '' } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hi\n');
  assert.match(r.stderr, /on platform (systrap|ptrace)/);
  assert.match(r.stderr, /auto chose (systrap|ptrace)/);
});

test('the default platform is the first that works here of systrap, kvm and ptrace, and --debug says so', async () => {
  const first = ['systrap', 'kvm', 'ptrace'].find((p) => platformUnusable(p) === null);
  const r = await veil(['do', '--debug', '--', busybox, 'echo', 'hi'], { env: { VEIL_PLATFORM: '' } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hi\n');
  assert.match(r.stderr, new RegExp(`on platform ${first}`));
  assert.match(r.stderr, new RegExp(`auto chose ${first}`));
});

test('an unknown flag', async () => {
  assertOneLineError(await veil(['do', '--bogus-flag', '--', busybox, 'true']), /bogus-flag/);
});
