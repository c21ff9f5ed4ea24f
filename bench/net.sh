#!/usr/bin/env bash
# Network benchmarks: loopback TCP inside one sandbox (both ends in the
# sentry's own stack) next to the same program natively in a fresh network
# namespace with only `lo` up, in the same run. The program (python3 from
# the host root) measures bulk throughput (256 MiB through one
# connection), request/response latency (64-byte ping-pong) and
# connection rate (connect, accept, close), each the median of RUNS runs.
#
# Usage: bench/net.sh [RUNS]     (default 3; needs root for the namespace)
# $VEIL_PLATFORM, when set, is the platform of `veil do`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
py=/usr/bin/python3
if [[ $(id -u) != 0 ]]; then
  echo "bench/net.sh: needs root (a network namespace for the native runs)" >&2
  exit 1
fi

prog=$(cat <<'PY'
import os, socket, sys, time
what = sys.argv[1]
def pair():
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", 0)); l.listen(128)
    return l, l.getsockname()
if what == "bulk":
    total, chunk = 256 << 20, 1 << 20
    l, addr = pair()
    pid = os.fork()
    if pid == 0:
        c, _ = l.accept(); got = 0
        while got < total:
            n = len(c.recv(1 << 20))
            if n == 0: break
            got += n
        os._exit(0 if got == total else 1)
    c = socket.create_connection(addr); buf = b"x" * chunk
    t = time.monotonic()
    for _ in range(total // chunk): c.sendall(buf)
    c.shutdown(socket.SHUT_WR); os.waitpid(pid, 0)
    print(f"{total / (time.monotonic() - t) / 1e6:.1f}")
elif what == "rr":
    n = 2000
    l, addr = pair()
    pid = os.fork()
    if pid == 0:
        c, _ = l.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while (m := c.recv(64)): c.sendall(m)
        os._exit(0)
    c = socket.create_connection(addr); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"q" * 64
    t = time.monotonic()
    for _ in range(n):
        c.sendall(msg); got = 0
        while got < 64: got += len(c.recv(64 - got))
    print(f"{(time.monotonic() - t) / n * 1e6:.1f}")
    c.close(); os.waitpid(pid, 0)
elif what == "conn":
    n = 500
    l, addr = pair()
    t = time.monotonic()
    for _ in range(n):
        c = socket.create_connection(addr); s, _ = l.accept(); s.close(); c.close()
    print(f"{n / (time.monotonic() - t):.0f}")
PY
)

platform=()
[[ -n ${VEIL_PLATFORM:-} ]] && platform=(--platform "$VEIL_PLATFORM")
native() { unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh "$py" -c "$prog" "$1"; }
inside() { node "$root/dist/cli.js" do "${platform[@]}" -- "$py" -c "$prog" "$1" 2>/dev/null; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
measure() { for _ in $(seq "$runs"); do "$1" "$2"; done | median; }

printf '%-34s %12s %12s %8s\n' "loopback TCP (${VEIL_PLATFORM:-default platform})" native veil ratio
for t in bulk rr conn; do
  n=$(measure native $t)
  v=$(measure inside $t)
  case $t in
    bulk) label='bulk throughput, MB/s'; ratio=$(awk -v a="$v" -v b="$n" 'BEGIN { printf "%.2f", a / b }') ;;
    rr) label='request/response, us per round trip'; ratio=$(awk -v a="$n" -v b="$v" 'BEGIN { printf "%.2f", a / b }') ;;
    conn) label='connections per second'; ratio=$(awk -v a="$v" -v b="$n" 'BEGIN { printf "%.2f", a / b }') ;;
  esac
  printf '%-34s %12s %12s %8s\n' "$label" "$n" "$v" "$ratio"
done
echo "(ratio: veil as a fraction of native; above 1 is faster than native)"
