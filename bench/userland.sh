#!/usr/bin/env bash
# Userland benchmarks (issue 3): each command from the Debian test rootfs,
# natively (chroot into the rootfs through a copy-on-write overlay, so the
# rootfs is not written) and in the sandbox (`veil do --rootfs`), measured
# in the same run; median of RUNS runs after one warm-up each, a fresh
# sandbox or chroot per run. The first row is `veil do` start-up, end to
# end; the others time the command inside, with bash's $EPOCHREALTIME, so
# start-up is not counted twice.
#
# Usage: bench/userland.sh [RUNS]      (default 5; needs root: chroot, mount)
# $VEIL_PLATFORM, when set, is passed to `veil do --platform`.
# The rootfs is $VEIL_ROOTFS or /var/cache/veil/rootfs-bookworm
# (scripts/build-rootfs.sh builds it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
rootfs=${VEIL_ROOTFS:-/var/cache/veil/rootfs-bookworm}
if [[ ! -f $rootfs/.veil-rootfs-complete ]]; then
  echo "bench/userland.sh: no Debian test rootfs in $rootfs (run scripts/build-rootfs.sh)" >&2
  exit 1
fi
if [[ $(id -u) != 0 ]]; then
  echo "bench/userland.sh: needs root (chroot and an overlay mount for the native runs)" >&2
  exit 1
fi
rootfs=$(cd "$rootfs" && pwd)
# Every mount below lives in a private mount namespace and dies with it.
if [[ -z ${VEIL_BENCH_IN_NS:-} ]]; then
  VEIL_BENCH_IN_NS=1 exec unshare --mount --propagation private -- "$0" "$@"
fi

# The inputs live in a layer of their own, stacked over the rootfs with
# overlayfs for both sides: the rootfs itself is never written.
work=$(mktemp -d "${TMPDIR:-/tmp}/vbench-userland.XXXXXX")
mount -t tmpfs veil-bench "$work"
inputs=$work/inputs
mkdir -p "$inputs/var/tmp"
big=$inputs/var/tmp/veil-bench-256m
sql=$inputs/var/tmp/veil-bench-inserts.sql
cleanup() {
  umount -R "$work/root" 2>/dev/null || true
  umount "$work/ro" 2>/dev/null || true
  umount "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

head -c 256M /dev/urandom >"$big"
{
  echo 'CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);'
  echo 'BEGIN;'
  seq 10000 | awk -v q="'" '{ printf "INSERT INTO t (name, n) VALUES (%srow%d%s, %d);\n", q, $1, q, $1 * 7 % 1000 }'
  echo 'COMMIT;'
} >"$sql"

# The native root: inputs and rootfs under an overlay with a tmpfs upper
# layer, /proc, and the host's /dev.
mkdir "$work/upper" "$work/work" "$work/root"
touch "$work/stderr"
mount -t overlay overlay -o "lowerdir=$inputs:$rootfs,upperdir=$work/upper,workdir=$work/work" "$work/root"
mount -t proc proc "$work/root/proc"
mount --rbind /dev "$work/root/dev"
# The sandbox's: the same layers with no upper one (a read-only overlay);
# its root is copy-on-write in its own memory anyway.
mkdir "$work/ro"
mount -t overlay overlay -o "lowerdir=$inputs:$rootfs" "$work/ro"

env_do=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "TERM=${TERM:-xterm}" HOME=/root)
native() { "${env_do[@]}" chroot "$work/root" "$@"; }
platform=(${VEIL_PLATFORM:+--platform "$VEIL_PLATFORM"})
sandbox() { node "$root/dist/cli.js" do "${platform[@]}" --rootfs "$work/ro" -- "$@"; }

# The command's own time, measured inside (bash's $EPOCHREALTIME, no fork):
# a fresh sandbox (or chroot) per run, its start-up not counted.
inner='s=$EPOCHREALTIME; eval "$1" >/dev/null </dev/null; e=$EPOCHREALTIME; echo $((${e/./} - ${s/./}))'

# Runs "$@" RUNS times after a warm-up; prints the median in ms, or
# "fails: <its last stderr line>" when a run fails. With MODE=inner the
# run prints its own time in µs; otherwise it is timed from outside.
median_ms() {
  local mode=$1 i start end out err times=()
  shift
  err=$work/stderr
  for ((i = 0; i <= runs; i++)); do
    start=$(date +%s%N)
    if ! out=$("$@" 2>"$err" </dev/null); then
      echo "fails: $(grep -v '^veil: unsupported syscall' "$err" | tail -n 1 | cut -c1-50)"
      return
    fi
    end=$(date +%s%N)
    ((i == 0)) && continue
    if [[ $mode == inner ]]; then
      [[ $out =~ ^[0-9]+$ ]] || { echo "fails: printed ${out:0:40}"; return; }
      times+=("$out")
    else
      times+=($(((end - start) / 1000)))
    fi
  done
  printf '%s\n' "${times[@]}" | sort -n |
    awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f\n", m / 1000 }'
}

cases=(
  "fork+exec: 200 x /bin/true"
  "cat 256 MiB > /dev/null"
  "python3 -c pass"
  "sqlite3: 10,000 inserts, one transaction"
)
commands=(
  'for i in $(seq 200); do /bin/true; done'
  'cat /var/tmp/veil-bench-256m > /dev/null'
  'python3 -c pass'
  'rm -f /tmp/bench.db; sqlite3 /tmp/bench.db < /var/tmp/veil-bench-inserts.sql'
)

row() { printf '| %-42s | %10s | %10s | %7s |\n' "$@"; }
ratio() {
  if [[ $1 == fails* || $2 == fails* ]]; then echo -; else awk -v n="$1" -v v="$2" 'BEGIN { printf "%.1fx", v / n }'; fi
}
row command "native ms" "veil ms" ratio
row "$(printf -- '-%.0s' {1..42})" ---------- ---------- -------
n=$(median_ms outer native /bin/true)
v=$(median_ms outer sandbox /bin/true)
row "start-up: /bin/true, end to end" "$n" "$v" "$(ratio "$n" "$v")"
for i in "${!cases[@]}"; do
  n=$(median_ms inner native bash -c "$inner" bench "${commands[$i]}")
  v=$(median_ms inner sandbox bash -c "$inner" bench "${commands[$i]}")
  row "${cases[$i]}" "$n" "$v" "$(ratio "$n" "$v")"
done
printf '\nmedian of %d runs after 1 warm-up each, a fresh sandbox (veil do --rootfs, platform: %s) or chroot per run;\n' "$runs" "${VEIL_PLATFORM:-default}"
printf 'the first row is end to end, the others time the command inside (start-up excluded)\n'
