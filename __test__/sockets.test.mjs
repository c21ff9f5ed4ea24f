// Issue 3, end to end: unix domain sockets, epoll, select, eventfd,
// timerfd and signalfd as python3 (from the host root) uses them. Each
// expected output is what the same program prints on Linux.
//
// Forks stand in for threads where a peer is needed, and signals are sent
// to a child rather than to the sandbox's init (which, like a PID
// namespace's init, drops signals it has no handler for).

import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNothingLeft, startWatching, veilDo } from './helpers.mjs';

beforeEach(startWatching);
afterEach(assertNothingLeft);

const python = (code) => veilDo(['/usr/bin/python3', '-u', '-c', code], { timeoutMs: 60000 });

async function expectOutput(code, expected) {
  const r = await python(code);
  assert.equal(r.stdout, expected, r.stderr);
  assert.equal(r.status, 0, r.stderr);
}

describe('unix domain sockets', () => {
  test('socketpair: send/recv, end of file, SCM_RIGHTS', () =>
    expectOutput(
      String.raw`
import socket, os, struct
a, b = socket.socketpair()
a.sendall(b"hello")
print(b.recv(100))
b.send(b"back")
print(a.recv(100))
print(a.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE), a.family)
r, w = os.pipe()
socket.send_fds(a, [b"fd"], [r])
msg, fds, flags, addr = socket.recv_fds(b, 10, 4)
print(msg, len(fds), flags, fds[0] != r)
os.write(w, b"via-pipe")
print(os.read(fds[0], 100))
print(os.get_inheritable(fds[0]))
socket.send_fds(a, [b"again"], [w])
msg, anc, flags, addr = b.recvmsg(10, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC)
print(msg, os.get_inheritable(struct.unpack("i", anc[0][2])[0]))
a.close()
print(b.recv(10))
`,
      "b'hello'\nb'back'\n1 1\nb'fd' 1 0 True\nb'via-pipe'\nTrue\nb'again' False\nb''\n",
    ));

  test('a stream server and client on an abstract name', () =>
    expectOutput(
      String.raw`
import socket, os, struct
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind("\0veil-test")
srv.listen()
print(srv.getsockname(), srv.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
pid = os.fork()
if pid == 0:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect("\0veil-test")
    print("client peer", c.getpeername(), flush=True)
    c.sendall(b"ping")
    print("client got", c.recv(10), flush=True)
    os._exit(0)
conn, addr = srv.accept()
print("server got", conn.recv(10), repr(addr))
conn.sendall(b"pong")
os.waitpid(pid, 0)
print(conn.recv(10))
pid2, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
print(pid2 == pid, uid, gid)
try:
    socket.socket(socket.AF_UNIX).connect("\0nobody-listens")
except ConnectionRefusedError as e:
    print("refused", e.errno)
`,
      "b'\\x00veil-test' 1\nclient peer b'\\x00veil-test'\nserver got b'ping' ''\nclient got b'pong'\nb''\nTrue 0 0\nrefused 111\n",
    ));

  test('datagram and seqpacket boundaries, SCM_CREDENTIALS, EPIPE without SIGPIPE for seqpacket', () =>
    expectOutput(
      String.raw`
import socket, os, struct, signal
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
a.send(b"one"); a.send(b"second")
print(b.recv(100), b.recv(3))
a.send(b"xyz")
print(b.recv(100, socket.MSG_PEEK), b.recv(100))
d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
d1.send(b"truncated!")
print(d2.recvmsg(4))
d2.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
d1.send(b"c")
msg, anc, flags, addr = d2.recvmsg(10, socket.CMSG_SPACE(12))
lvl, typ, data = anc[0]
pid, uid, gid = struct.unpack("iII", data)
print(msg, lvl, typ, pid == os.getpid(), uid, gid)
n1 = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); n1.bind("\0n1")
n2 = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); n2.bind("\0n2")
n2.sendto(b"dgram1", "\0n1")
print(n1.recvfrom(100))
print(a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), a.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN), a.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
print(oct(os.fstat(a.fileno()).st_mode & 0o170000))
b.close()
signal.signal(signal.SIGPIPE, lambda *x: print("SIGPIPE"))
try:
    a.send(b"x")
except BrokenPipeError as e:
    print("EPIPE", e.errno)
s1, s2 = socket.socketpair()
s2.close()
try:
    s1.send(b"x")
except BrokenPipeError as e:
    print("EPIPE", e.errno)
`,
      "b'one' b'sec'\nb'xyz' b'xyz'\n(b'trun', [], 32, None)\nb'c' 1 2 True 0 0\n(b'dgram1', b'\\x00n2')\n212992 1 0\n0o140000\nEPIPE 32\nSIGPIPE\nEPIPE 32\n",
    ));

  test('families without a stack are refused without breaking name lookups', () =>
    expectOutput(
      String.raw`
import socket
for fam in (socket.AF_PACKET,):
    try:
        socket.socket(fam, socket.SOCK_DGRAM)
    except OSError as e:
        print(fam, e.errno)
print(len(socket.getaddrinfo("localhost", 80)) > 0)
`,
      '17 97\nTrue\n',
    ));
});

describe('readiness: epoll, select', () => {
  test('selectors (epoll) on a pipe and a socket; select.select', () =>
    expectOutput(
      String.raw`
import socket, os, selectors, select, time
sel = selectors.DefaultSelector()
print(type(sel).__name__)
r, w = os.pipe()
a, b = socket.socketpair()
sel.register(r, selectors.EVENT_READ, "pipe")
sel.register(b, selectors.EVENT_READ, "sock")
print(sel.select(timeout=0.05))
os.write(w, b"x")
print([(k.data, m) for k, m in sel.select(timeout=1)])
os.read(r, 1)
a.send(b"y")
print([(k.data, m) for k, m in sel.select(timeout=1)])
b.recv(1)
if os.fork() == 0:
    time.sleep(0.2); a.send(b"z"); os._exit(0)
t0 = time.time()
print([(k.data, m) for k, m in sel.select(timeout=5)], time.time() - t0 > 0.1)
os.wait()
rd, wr, ex = select.select([b], [a], [], 0)
print(rd == [b], wr == [a], ex)
b.recv(1)
t0 = time.time()
print(select.select([b, r], [], [], 0.1), time.time() - t0 >= 0.09)
`,
      "EpollSelector\n[]\n[('pipe', 1)]\n[('sock', 1)]\n[('sock', 1)] True\nTrue True []\n([], [], []) True\n",
    ));

  test('epoll: nested, edge-triggered, one-shot, RDHUP, EPERM on regular files', () =>
    expectOutput(
      String.raw`
import socket, select
a, b = socket.socketpair()
inner = select.epoll(); inner.register(b, select.EPOLLIN | select.EPOLLET)
outer = select.epoll(); outer.register(inner.fileno(), select.EPOLLIN)
print("nested idle", outer.poll(0.05))
a.send(b"1")
print("nested ready", outer.poll(1) == [(inner.fileno(), select.EPOLLIN)])
print("ET first", inner.poll(0) == [(b.fileno(), select.EPOLLIN)])
print("ET again", inner.poll(0.05))
a.send(b"2")
print("ET new data", inner.poll(1) == [(b.fileno(), select.EPOLLIN)])
e3 = select.epoll(); e3.register(b, select.EPOLLIN | select.EPOLLONESHOT)
print("oneshot", len(e3.poll(0)), e3.poll(0))
e3.modify(b, select.EPOLLIN)
print("rearmed", len(e3.poll(0)))
e4 = select.epoll(); e4.register(b, select.EPOLLIN | select.EPOLLRDHUP)
b.recv(10); a.close()
print("rdhup", e4.poll(1)[0][1] == select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP)
try:
    e4.register(open("/etc/hostname"), select.EPOLLIN)
except PermissionError as e:
    print("EPERM", e.errno)
`,
      'nested idle []\nnested ready True\nET first True\nET again []\nET new data True\noneshot 1 []\nrearmed 1\nrdhup True\nEPERM 1\n',
    ));
});

describe('eventfd, timerfd, signalfd', () => {
  test('eventfd: semaphore mode, EAGAIN, readiness', () =>
    expectOutput(
      String.raw`
import os, select
e = os.eventfd(3, os.EFD_SEMAPHORE | os.EFD_NONBLOCK)
print(os.eventfd_read(e), os.eventfd_read(e), os.eventfd_read(e))
try:
    os.eventfd_read(e)
except BlockingIOError as ex:
    print("EAGAIN", ex.errno)
print(select.select([e], [], [], 0)[0])
os.eventfd_write(e, 5)
print(select.select([e], [], [], 0)[0] == [e])
f = os.eventfd(0)
os.eventfd_write(f, 2); os.eventfd_write(f, 3)
print(os.eventfd_read(f))
`,
      '1 1 1\nEAGAIN 11\n[]\nTrue\n5\n',
    ));

  test('timerfd: relative periodic, gettime, absolute one-shot through epoll', () =>
    expectOutput(
      String.raw`
import ctypes, os, struct, time, select
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.timerfd_create(time.CLOCK_MONOTONIC, 0)
spec = struct.pack("qqqq", 0, 30_000_000, 0, 50_000_000)
print("settime", libc.timerfd_settime(fd, 0, ctypes.create_string_buffer(spec), None))
t0 = time.monotonic()
n = struct.unpack("Q", os.read(fd, 8))[0]
print("first", n, 0.04 < time.monotonic() - t0 < 0.5)
time.sleep(0.1)
n = struct.unpack("Q", os.read(fd, 8))[0]
print("after 100ms", 3 <= n <= 4)
out = ctypes.create_string_buffer(32)
libc.timerfd_gettime(fd, out)
iv_s, iv_ns, v_s, v_ns = struct.unpack("qqqq", out.raw)
print("gettime", iv_s, iv_ns, v_s == 0 and 0 < v_ns <= 30_000_000)
libc.timerfd_settime(fd, 0, ctypes.create_string_buffer(bytes(32)), None)
print("disarmed", select.select([fd], [], [], 0.05)[0])
ep = select.epoll()
ep.register(fd, select.EPOLLIN)
deadline = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + 20_000_000
ts = struct.pack("qqqq", 0, 0, *divmod(deadline, 1_000_000_000))
libc.timerfd_settime(fd, 1, ctypes.create_string_buffer(ts), None)
print("epoll", ep.poll(2) == [(fd, select.EPOLLIN)], struct.unpack("Q", os.read(fd, 8))[0])
fd2 = libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK)
try:
    os.read(fd2, 8)
except BlockingIOError:
    print("EAGAIN")
print("bad clock", libc.timerfd_create(12345, 0), ctypes.get_errno())
`,
      'settime 0\nfirst 1 True\nafter 100ms True\ngettime 0 30000000 True\ndisarmed []\nepoll True 1\nEAGAIN\nbad clock -1 22\n',
    ));

  test('signalfd: readiness, read, a signal from another process through epoll', () =>
    expectOutput(
      String.raw`
import ctypes, os, struct, time, select, signal
libc = ctypes.CDLL(None, use_errno=True)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
sfd = libc.signalfd(-1, ctypes.create_string_buffer(struct.pack("Q", 1 << (signal.SIGUSR1 - 1))), 0)
print("not ready", select.select([sfd], [], [], 0)[0])
os.kill(os.getpid(), signal.SIGUSR1)
print("ready", select.select([sfd], [], [], 1)[0] == [sfd])
signo, errno_, code, pid, uid = struct.unpack("IiiII", os.read(sfd, 128)[:20])
print("siginfo", signo, code, pid == os.getpid(), uid)
mid = os.fork()
if mid == 0:
    ep = select.epoll(); ep.register(sfd, select.EPOLLIN)
    if os.fork() == 0:
        time.sleep(0.1); os.kill(os.getppid(), signal.SIGUSR1); os._exit(0)
    print("epoll", ep.poll(3) == [(sfd, select.EPOLLIN)], flush=True)
    print("read", struct.unpack("I", os.read(sfd, 128)[:4])[0], flush=True)
    os.wait()
    os._exit(0)
os.waitpid(mid, 0)
`,
      'not ready []\nready True\nsiginfo 10 0 True 0\nepoll True\nread 10\n',
    ));
});
