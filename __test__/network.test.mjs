// The sandbox's own TCP/IP stack, end to end: the socket API as programs
// use it over loopback, compared line for line with Linux (the same
// program run natively in a fresh network namespace with only `lo` up),
// Python's http.server answering urllib, and busybox httpd, wget and nc.
// No host socket is involved: the sandbox's loopback lives in the sentry.

import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { assertNothingLeft, busybox, startWatching, testRootfs, veilDo, veilIn } from './helpers.mjs';

beforeEach(startWatching);
afterEach(assertNothingLeft);

/** CMD run natively in a new network namespace with only loopback up. */
function nativeLoopbackOnly(cmd) {
  const r = spawnSync('unshare', ['--net', '--', busybox, 'sh', '-c', `${busybox} ip link set lo up && exec "$@"`, 'sh', ...cmd], {
    encoding: 'utf8',
    timeout: 60000,
  });
  assert.equal(r.status, 0, `the native run failed (test bug?):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function assertSameAsLinux(cmd) {
  const expected = nativeLoopbackOnly(cmd);
  const r = await veilDo(cmd, { timeoutMs: 60000 });
  assert.equal(r.stdout, expected, r.stderr);
  assert.equal(r.status, 0, r.stderr);
}

// Names, options, data with MSG_PEEK/MSG_WAITALL/MSG_DONTWAIT, FIONREAD,
// select/poll/epoll readiness, shutdown, reset, EPIPE, errors, non-blocking
// connect with SO_ERROR, SO_RCVTIMEO, dual stack, UDP in both families.
const SOCKET_API = String.raw`import socket, os, select, struct, errno, signal, time, fcntl, termios

def err(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]

# TCP over 127.0.0.1: names, options, data, peeking, FIONREAD.
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 8123))
srv.listen(5)
print("listen", srv.getsockname(), srv.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
c = socket.create_connection(("127.0.0.1", 8123))
conn, peer = srv.accept()
print("peer matches", peer == c.getsockname(), c.getpeername(), conn.getsockname())
print("types", c.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE), c.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN), c.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
print("nodelay", c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), end=" ")
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0)
c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
print("keepalive", c.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
c.sendall(b"hello world")
time.sleep(0.1)
print("fionread", struct.unpack("i", fcntl.ioctl(conn, termios.FIONREAD, b"\0\0\0\0"))[0])
print("peek", conn.recv(5, socket.MSG_PEEK), conn.recv(100))
print("waitall", end=" ", flush=True)
pid = os.fork()
if pid == 0:
    for piece in (b"ab", b"cd", b"ef"):
        time.sleep(0.05)
        c.send(piece)
    os._exit(0)
print(conn.recv(6, socket.MSG_WAITALL))
os.waitpid(pid, 0)
print("dontwait", err(lambda: conn.recv(10, socket.MSG_DONTWAIT)))

# readiness: select, poll, epoll
print("select", select.select([conn], [conn], [], 0)[:2] == ([], [conn]))
c.send(b"x")
p = select.poll(); p.register(conn, select.POLLIN | select.POLLOUT)
print("poll", [ev for _, ev in p.poll(1000)])
ep = select.epoll(); ep.register(conn.fileno(), select.EPOLLIN | select.EPOLLET | select.EPOLLRDHUP)
print("epoll", [ev for _, ev in ep.poll(1)])
conn.recv(10)

# shutdown: end of file, RDHUP
c.shutdown(socket.SHUT_WR)
print("eof", conn.recv(10), ep.poll(1) == [(conn.fileno(), select.EPOLLIN | select.EPOLLRDHUP)])
conn.sendall(b"still open the other way")
print("half-closed", c.recv(100))
conn.close(); c.close()

# SIGPIPE / EPIPE and reset
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
a = socket.create_connection(("127.0.0.1", 8123)); b, _ = srv.accept()
a.send(b"unread")
time.sleep(0.05)
b.close()
time.sleep(0.05)
print("reset", err(lambda: a.recv(10)), err(lambda: a.send(b"x")))
a.close()

# errors
print("refused", err(lambda: socket.create_connection(("127.0.0.1", 1))))
d = socket.socket()
print("inuse", err(lambda: d.bind(("127.0.0.1", 8123))), err(lambda: d.bind(("10.200.0.1", 80))))
print("unconnected send", err(lambda: d.send(b"x")), err(lambda: d.getpeername()))
print("socketpair", err(lambda: socket.socketpair(socket.AF_INET)))

# non-blocking connect: EINPROGRESS or at once, then SO_ERROR
n = socket.socket(); n.setblocking(False)
r = n.connect_ex(("127.0.0.1", 8123))
print("nb connect", r in (0, errno.EINPROGRESS), select.select([], [n], [], 5)[1] == [n], n.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
m = socket.socket(); m.setblocking(False)
m.connect_ex(("127.0.0.1", 2))
select.select([], [m], [], 5)
print("nb refused", errno.errorcode[m.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)])

# SO_RCVTIMEO
x, _ = srv.accept()
x.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200000))
t0 = time.monotonic()
print("rcvtimeo", err(lambda: x.recv(1)), 0.15 < time.monotonic() - t0 < 2)

# dual stack
s6 = socket.socket(socket.AF_INET6)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s6.bind(("::", 8124)); s6.listen()
v4 = socket.create_connection(("127.0.0.1", 8124)); k, addr = s6.accept()
print("dual", addr[0], k.getsockname()[0])
v6 = socket.create_connection(("::1", 8124)); k6, addr6 = s6.accept()
print("v6", addr6[0], v6.getpeername()[:2])

# UDP
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 5300))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
v.sendto(b"question", ("127.0.0.1", 5300))
data, frm = u.recvfrom(100)
print("udp", data, frm == v.getsockname())
u.sendto(b"answer", frm)
print("udp back", v.recvfrom(3, socket.MSG_PEEK)[0], v.recv(100))
v.connect(("127.0.0.1", 5300)); v.send(b"connected")
print("udp connected", u.recv(100), v.getpeername())
buf = bytearray(4)
u.sendto(b"truncated!", v.getsockname())
print("udp trunc", v.recvmsg_into([buf])[0:3:2], bytes(buf))
w = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); w.bind(("::1", 5301))
socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b"six", ("::1", 5301))
print("udp6", w.recv(10))
`;

const HTTP_SERVER = String.raw`import subprocess, urllib.request, time, os, socket, sys
os.makedirs("/tmp/www", exist_ok=True)
with open("/tmp/www/hello.txt", "w") as f:
    f.write("hello from the sandbox\n")
def wait_port(host, port):
    for _ in range(400):
        try:
            socket.create_connection((host, port), timeout=5).close()
            return
        except ConnectionRefusedError:
            time.sleep(0.05)
    sys.exit("server never listened")
# One server bound to 127.0.0.1, one on the dual-stack wildcard.
a = subprocess.Popen([sys.executable, "-m", "http.server", "8000", "--bind", "127.0.0.1", "--directory", "/tmp/www"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
b = subprocess.Popen([sys.executable, "-m", "http.server", "8001", "--directory", "/tmp/www"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port("127.0.0.1", 8000)
wait_port("::1", 8001)
for url in ("http://127.0.0.1:8000/hello.txt", "http://127.0.0.1:8001/hello.txt", "http://[::1]:8001/hello.txt"):
    with urllib.request.urlopen(url, timeout=10) as r:
        print(url, r.status, r.headers["Content-Type"], r.headers["Content-Length"], repr(r.read().decode()))
with urllib.request.urlopen("http://127.0.0.1:8000/", timeout=10) as r:
    print("listing has hello.txt:", b'href="hello.txt"' in r.read())
big = os.urandom(3 << 20)
with open("/tmp/www/big.bin", "wb") as f:
    f.write(big)
with urllib.request.urlopen("http://127.0.0.1:8000/big.bin", timeout=30) as r:
    print("3 MiB intact:", r.read() == big)
try:
    urllib.request.urlopen("http://127.0.0.1:8000/missing", timeout=10)
except urllib.error.HTTPError as e:
    print("missing:", e.code)
for p in (a, b):
    p.terminate()
    p.wait()
`;

const BUSYBOX_NET = String.raw`set -e
mkdir -p /tmp/www
echo "served by busybox httpd" > /tmp/www/index.html
busybox httpd -f -p 127.0.0.1:8080 -h /tmp/www &
HTTPD=$!
i=0; until busybox wget -q -O /tmp/page http://127.0.0.1:8080/index.html 2>/dev/null; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.05; done
cat /tmp/page
busybox wget -q -O - http://127.0.0.1:8080/nothing-here 2>&1 || echo "wget of a missing page failed"
kill $HTTPD
busybox nc -l -p 9000 > /tmp/got &
NC=$!
i=0; until echo "through nc" | busybox nc 127.0.0.1 9000 2>/dev/null; do i=$((i+1)); [ $i -lt 100 ] || exit 8; sleep 0.05; done
wait $NC
cat /tmp/got
`;

// What programs read about the network: rtnetlink (iproute2, busybox ip,
// glibc's if_nameindex and AI_ADDRCONFIG) and the SIOCGIF* ioctls.
const INTERFACES = String.raw`
ip -br link
ip -br addr
ip addr
ip route
ip -6 route
busybox ip addr
/usr/bin/python3 -c 'import socket; print(socket.if_nameindex())'
/usr/bin/python3 -c 'import socket; print(sorted(set(a[4][0] for a in socket.getaddrinfo("localhost", 80, proto=socket.IPPROTO_TCP, flags=socket.AI_ADDRCONFIG))))'
`;

const ipAvailable = spawnSync('ip', ['-V']).status === 0;

describe('the sandbox network stack over loopback', () => {
  test('ip, busybox ip and glibc see the links as on Linux', { skip: ipAvailable ? false : 'no iproute2 `ip`' }, () =>
    assertSameAsLinux([busybox, 'sh', '-c', INTERFACES]));

  test('the socket API behaves as on Linux', () => assertSameAsLinux(['/usr/bin/python3', '-u', '-c', SOCKET_API]));

  test('busybox httpd serves wget, nc carries a stream', () => assertSameAsLinux([busybox, 'sh', '-c', BUSYBOX_NET]));

  const { dir: R, skip } = testRootfs();
  test("Python's http.server answers urllib (IPv4, IPv6, dual stack)", { skip }, async () => {
    const r = await veilIn(R, ['/usr/bin/python3', '-u', '-c', HTTP_SERVER], { timeoutMs: 120000 });
    assert.equal(
      r.stdout,
      [
        "http://127.0.0.1:8000/hello.txt 200 text/plain 23 'hello from the sandbox\\n'",
        "http://127.0.0.1:8001/hello.txt 200 text/plain 23 'hello from the sandbox\\n'",
        "http://[::1]:8001/hello.txt 200 text/plain 23 'hello from the sandbox\\n'",
        'listing has hello.txt: True',
        '3 MiB intact: True',
        'missing: 404',
        '',
      ].join('\n'),
      r.stderr,
    );
    assert.equal(r.status, 0, r.stderr);
  });
});
