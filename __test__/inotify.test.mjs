// inotify end to end: real file watchers of the Debian rootfs run in the
// sandbox and see the same events, in the same order, as they do natively
// (the same script chrooted into the same rootfs on the host kernel).

import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { assertBashSameAsNative, assertNothingLeft, startWatching, testRootfs } from './helpers.mjs';

const { dir: R, skip: noRootfs } = testRootfs();
const noInotifyTools = !noRootfs && !existsSync(join(R, 'usr/bin/inotifywait'))
  ? `the test rootfs at ${R} predates inotify-tools: rebuild it with scripts/build-rootfs.sh`
  : false;

beforeEach(startWatching);
afterEach(assertNothingLeft);

// Waits (up to 10 s) until FILE contains PATTERN.
const WAIT_FOR = `wait_for() { for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; echo "timed out waiting for $2 in $1" >&2; return 1; }`;

describe('inotify', { skip: noRootfs || noInotifyTools }, () => {
  test('inotifywait sees creations, writes, attribute changes, moves and deletions in a directory', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `${WAIT_FOR}
       mkdir -p /tmp/w
       inotifywait -m -e create,modify,delete,moved_from,moved_to,close_write,attrib,delete_self --format '%e %f' /tmp/w >/tmp/log 2>/tmp/err & pid=$!
       wait_for /tmp/err established
       echo a > /tmp/w/f; echo b >> /tmp/w/f; : > /tmp/w/f; chmod 600 /tmp/w/f
       mv /tmp/w/f /tmp/w/g; ln /tmp/w/g /tmp/w/h; rm /tmp/w/g /tmp/w/h
       mkdir /tmp/w/d; rmdir /tmp/w/d; touch /tmp/w/end
       wait_for /tmp/log 'CLOSE_WRITE,CLOSE end'
       kill $pid; wait $pid
       cat /tmp/log`,
    );
    assert.match(outside.stdout, /^CREATE f\nMODIFY f\nCLOSE_WRITE,CLOSE f\n/);
    assert.match(outside.stdout, /MOVED_FROM f\nMOVED_TO g\n/);
    assert.match(outside.stdout, /CREATE,ISDIR d\nDELETE,ISDIR d\n/);
  });

  test('inotifywait on a file sees its deletion, and a one-shot wait returns the first event', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `${WAIT_FOR}
       echo x > /tmp/f
       inotifywait -e modify,attrib,delete_self --format '%e %w' /tmp/f >/tmp/one 2>/tmp/err1 & one=$!
       wait_for /tmp/err1 established
       echo y >> /tmp/f; wait $one; echo "one-shot status=$?"
       inotifywait -m --format '%e' /tmp/f >/tmp/log 2>/tmp/err2 & pid=$!
       wait_for /tmp/err2 established
       cat /tmp/f >/dev/null; rm /tmp/f
       wait_for /tmp/log DELETE_SELF
       kill $pid; wait $pid
       cat /tmp/one /tmp/log`,
    );
    assert.equal(outside.stdout, 'one-shot status=0\nMODIFY /tmp/f\nOPEN\nACCESS\nCLOSE_NOWRITE,CLOSE\nATTRIB\nDELETE_SELF\n');
  });

  test('tail -f follows a file another process appends to', async () => {
    // -s 30: were tail to fall back to polling, it would look only every
    // 30 s and the lines would not arrive in time; with inotify they do.
    // The file is on a tmpfs: GNU tail polls files on an overlay.
    const { outside } = await assertBashSameAsNative(
      R,
      `${WAIT_FOR}
       mkdir -p /dev/shm; echo line1 > /dev/shm/f
       tail -s 30 -f /dev/shm/f >/tmp/out 2>/tmp/tail-err & t=$!
       wait_for /tmp/out line1
       sh -c 'for i in 2 3 4; do echo line$i >> /dev/shm/f; sleep 0.1; done' &
       wait $!
       wait_for /tmp/out line4
       kill $t; wait $t
       cat /tmp/out /tmp/tail-err`,
    );
    assert.equal(outside.stdout, 'line1\nline2\nline3\nline4\n');
  });
});
