// Issue 2, item 7: bad input fails with one line naming the problem, and
// leaves nothing behind.

import { afterEach, beforeEach, test } from 'node:test';
import { assertNothingLeft, assertOneLineError, busybox, startWatching, veil, veilDo } from './helpers.mjs';

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

test('an unknown flag', async () => {
  assertOneLineError(await veil(['do', '--bogus-flag', '--', busybox, 'true']), /bogus-flag/);
});
