#!/usr/bin/env bash
# End-to-end start-up cost: median wall time of `veil do -- /bin/busybox true`
# next to `runc run` of the same static binary, measured in the same run.
# Usage: bench/e2e.sh [RUNS] [WARMUPS]     (defaults 20 and 3; runc needs root)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-20}
warmups=${2:-3}
busybox=/bin/busybox
veil=(node "$root/dist/cli.js" do -- "$busybox" true)

work=$(mktemp -d "${TMPDIR:-/tmp}/veil-bench.XXXXXX")
id=veil-bench-$$
cleanup() {
  runc --root "$work/runc-state" delete --force "$id" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A runc bundle whose rootfs holds only the static busybox.
mkdir -p "$work/bundle/rootfs/bin"
cp "$busybox" "$work/bundle/rootfs/bin/busybox"
(cd "$work/bundle" && runc spec)
node - "$work/bundle/config.json" <<'JS'
const fs = require('node:fs');
const file = process.argv[2];
const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
spec.process.args = ['/bin/busybox', 'true'];
spec.process.terminal = false;
fs.writeFileSync(file, JSON.stringify(spec, null, 2));
JS
runc_cmd=(runc --root "$work/runc-state" run --bundle "$work/bundle" "$id")

# Prints the median of $runs timed runs (ms), after $warmups untimed ones.
median_ms() {
  local i start end
  for ((i = 0; i < warmups; i++)); do "$@" >/dev/null </dev/null; done
  for ((i = 0; i < runs; i++)); do
    start=$(date +%s%N)
    "$@" >/dev/null </dev/null
    end=$(date +%s%N)
    echo $(((end - start) / 1000))
  done | sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f\n", m / 1000 }'
}

veil_ms=$(median_ms "${veil[@]}")
runc_ms=$(median_ms "${runc_cmd[@]}")
printf '%-40s %8s ms\n' "veil do -- /bin/busybox true" "$veil_ms" "runc run (busybox true)" "$runc_ms"
awk -v v="$veil_ms" -v r="$runc_ms" 'BEGIN { printf "%-40s %8.2fx\n", "veil / runc", v / r }'
printf 'median of %d runs after %d warm-ups each\n' "$runs" "$warmups"
