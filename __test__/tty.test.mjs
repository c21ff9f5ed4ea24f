// Terminals end to end: /dev/ptmx + devpts pseudo-terminals with the
// sentry's line discipline, controlling terminals, job-control signals and
// /dev/tty, run from the Debian test rootfs. Where the output is
// deterministic it is compared byte for byte with the same command run
// natively (helpers.mjs native(): a chroot with a fresh devpts instance).
// A pty's output has CRLF line ends: ONLCR turns the program's "\n" into
// "\r\n" on the way to the master.

import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNothingLeft, assertSameAsNative, startWatching, testRootfs, veilIn } from './helpers.mjs';

const { dir: R, skip } = testRootfs();
if (skip) console.log(`# tty tests skipped: ${skip}`);

beforeEach(startWatching);
afterEach(assertNothingLeft);

const py = (code) => ['python3', '-c', code];

// Reads the master until the replica side is gone (EIO) or `marker` shows.
const PY_HELPERS = `
import os, sys
def read_until(fd, marker=None):
    out = b""
    while marker is None or marker not in out:
        try:
            d = os.read(fd, 1024)
        except OSError:
            break
        if not d:
            break
        out += d
    return out
`;

describe('pseudo-terminals', { skip }, () => {
  test("script -q -c 'echo hi; tty' runs the command on /dev/pts/0", async () => {
    const { inside } = await assertSameAsNative(R, ['script', '-q', '-c', 'echo hi; tty', '/dev/null'], { input: '' });
    assert.equal(inside.stdout, 'hi\r\n/dev/pts/0\r\n');
  });

  test('os.openpty: a line written to the master is read from the replica and echoed', async () => {
    const { inside } = await assertSameAsNative(
      R,
      py(`import os, stat
m, s = os.openpty()
print(os.ttyname(s), os.isatty(m), os.isatty(s))
st = os.fstat(s)
print(stat.S_ISCHR(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev), st.st_ino == os.stat(os.ttyname(s)).st_ino)
st = os.fstat(m)
print(stat.S_ISCHR(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev))
os.write(m, b"hello\\n")
print(os.read(s, 100))
print(os.read(m, 100))
os.write(s, b"out\\n")
print(os.read(m, 100))
print(sorted(os.listdir("/dev/pts")))
os.close(s)
try:
    os.read(m, 100)
except OSError as e:
    print("master after replica closed:", e.strerror)
os.close(m)
print(sorted(os.listdir("/dev/pts")))`),
    );
    assert.equal(
      inside.stdout,
      [
        '/dev/pts/0 True True',
        'True 136 0 True',
        'True 5 2',
        "b'hello\\n'",
        "b'hello\\r\\n'",
        "b'out\\r\\n'",
        "['0', 'ptmx']",
        'master after replica closed: Input/output error',
        "['ptmx']",
        '',
      ].join('\n'),
    );
  });

  test('pty.fork: the child leads a session whose controlling terminal is the pty', async () => {
    const { inside } = await assertSameAsNative(
      R,
      py(`${PY_HELPERS}
import pty
pid, fd = pty.fork()
if pid == 0:
    print(os.ttyname(0), os.getsid(0) == os.getpid(), os.tcgetpgrp(0) == os.getpgrp())
    sys.stdout.flush()
    t = os.open("/dev/tty", os.O_RDWR)
    os.write(t, b"via /dev/tty\\n")
    os._exit(3)
out = read_until(fd)
_, st = os.waitpid(pid, 0)
print(repr(out), os.waitstatus_to_exitcode(st))`),
    );
    assert.equal(inside.stdout, "b'/dev/pts/0 True True\\r\\nvia /dev/tty\\r\\n' 3\n");
  });

  test('canonical input: erase edits the line, the echo shows it', async () => {
    const { inside } = await assertSameAsNative(
      R,
      py(`${PY_HELPERS}
import pty
pid, fd = pty.fork()
if pid == 0:
    line = sys.stdin.readline()
    print(repr(line))
    sys.stdout.flush()
    os._exit(0)
os.write(fd, b"ab\\x7fc\\n")
out = read_until(fd)
os.waitpid(pid, 0)
print(repr(out))`),
    );
    assert.equal(inside.stdout, "b\"ab\\x08 \\x08c\\r\\n'ac\\\\n'\\r\\n\"\n");
  });

  test('^C and a window size change signal the foreground process group', async () => {
    const { inside } = await assertSameAsNative(
      R,
      py(`${PY_HELPERS}
import pty, fcntl, struct, termios
pid, fd = pty.fork()
if pid == 0:
    import signal, time
    # Unbuffered writes only: a handler may run while the main code is
    # still inside a buffered write that already reached the terminal.
    def winch(*a):
        os.write(1, f"winch {os.get_terminal_size(0)}\\n".encode())
    def intr(*a):
        os.write(1, b"got SIGINT\\n")
        os._exit(7)
    signal.signal(signal.SIGWINCH, winch)
    signal.signal(signal.SIGINT, intr)
    os.write(1, b"ready\\n")
    while True:
        time.sleep(1)
out = read_until(fd, b"ready\\r\\n")
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
out += read_until(fd, b"lines=30)\\r\\n")
os.write(fd, b"\\x03")
out += read_until(fd)
_, st = os.waitpid(pid, 0)
print(repr(out), os.waitstatus_to_exitcode(st))`),
    );
    assert.equal(inside.stdout, "b'ready\\r\\nwinch os.terminal_size(columns=100, lines=30)\\r\\n^Cgot SIGINT\\r\\n' 7\n");
  });

  test('raw mode: VMIN/VTIME reads, no echo, no signals', async () => {
    const { inside } = await assertSameAsNative(
      R,
      py(`import os, tty, termios, time
m, s = os.openpty()
tty.setraw(s)
os.write(m, b"\\x03\\r")
time.sleep(0.1)
print(os.read(s, 100))
a = termios.tcgetattr(s)
a[6][termios.VMIN] = 0
a[6][termios.VTIME] = 1
termios.tcsetattr(s, termios.TCSANOW, a)
t = time.monotonic()
print(os.read(s, 100), time.monotonic() - t >= 0.05)
os.set_blocking(m, False)
try:
    os.read(m, 100)
except BlockingIOError:
    print("no echo")`),
    );
    assert.equal(inside.stdout, "b'\\x03\\r'\nb'' True\nno echo\n");
  });
});

describe('/dev/tty and tty(1) without a terminal', { skip }, () => {
  test('tty prints "not a tty" and exits 1 when stdin is a pipe', async () => {
    const { inside } = await assertSameAsNative(R, ['tty'], { input: '', expectStatus: 1 });
    assert.equal(inside.stdout, 'not a tty\n');
  });

  test('/dev/tty is ENXIO for a process with no controlling terminal', async () => {
    const r = await veilIn(R, py(`import os, errno
try:
    os.open("/dev/tty", os.O_RDWR)
except OSError as e:
    print(errno.errorcode[e.errno])
print(oct(os.stat("/dev/ptmx").st_mode), os.readlink("/dev/ptmx"), oct(os.stat("/dev/pts/ptmx").st_mode))
# Replicas are 0620 root:tty, as Docker mounts devpts (gid=5,mode=620).
m, s = os.openpty()
st = os.stat(os.ttyname(s))
print(oct(st.st_mode), st.st_uid, st.st_gid)`), { input: '' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'ENXIO\n0o20666 pts/ptmx 0o20666\n0o20620 0 5\n');
  });
});
