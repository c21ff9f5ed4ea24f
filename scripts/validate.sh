#!/usr/bin/env bash
# The OCI runtime-tools validation suite, run against veil and runc in the
# same run: prints "veil N/M, runc N/M" and the validations each one fails.
#
#   scripts/validate.sh                      # every validation, veil and runc
#   scripts/validate.sh --runtimes veil      # veil only
#   scripts/validate.sh state pidfile ...    # just these validations
#   scripts/validate.sh --build-only         # build the suite, print its directory
#
# The suite (github.com/opencontainers/runtime-tools) comes from the Go module
# proxy and is built with Debian's Go (1.19 in bookworm: the newest suite
# versions need Go 1.21, so the version is pinned to one 1.19 builds). The
# build is cached in $VEIL_VALIDATION_DIR. Must run as root: the validations
# create containers with the runtime's default --root.
#
# A validation passes when its TAP output has no "not ok" line, at least one
# "ok" line, and it exits 0. TAP output of failures is kept under
# $VEIL_VALIDATION_DIR/results/RUNTIME/NAME.tap.
set -euo pipefail

RT_MODULE=github.com/opencontainers/runtime-tools
RT_VERSION=${RT_VERSION:-v0.9.1-0.20221107090550-2e043c6bd626}
DIR=${VEIL_VALIDATION_DIR:-/var/cache/veil/runtime-tools-$RT_VERSION}
repo=$(cd "$(dirname "$0")/.." && pwd)
runtimes=(veil runc)
build_only=false
per_test_timeout=${VALIDATION_TIMEOUT:-300}
only=()

while (($#)); do
  case $1 in
    --runtimes) IFS=, read -ra runtimes <<<"$2"; shift 2 ;;
    --build-only) build_only=true; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "validate.sh: unknown flag $1" >&2; exit 2 ;;
    *) only+=("$1"); shift ;;
  esac
done

# Any Go that builds the pinned suite: the one on PATH, else Debian's.
go_binary() {
  local g
  for g in "${GO:-}" "$(command -v go || true)" /usr/lib/go-1.19/bin/go /usr/lib/go/bin/go; do
    [[ -n $g && -x $g ]] && { echo "$g"; return; }
  done
  echo "validate.sh: no Go toolchain (install golang-go)" >&2
  exit 1
}

build_suite() {
  [[ -f $DIR/.complete ]] && return
  local go src
  go=$(go_binary)
  echo "# building $RT_MODULE@$RT_VERSION with $($go version) into $DIR" >&2
  export GOPATH=$DIR/gopath GOCACHE=$DIR/gocache GOFLAGS=-mod=mod CGO_ENABLED=0
  src=$("$go" mod download -json "$RT_MODULE@$RT_VERSION" | jq -r .Dir)
  rm -rf "$DIR/suite"
  cp -r "$src" "$DIR/suite"
  chmod -R u+w "$DIR/suite"
  # The module zip keeps vendor/modules.txt but not the vendored code.
  rm -rf "$DIR/suite/vendor"
  (
    cd "$DIR/suite"
    "$go" build -tags 'netgo osusergo' -o runtimetest ./cmd/runtimetest
    mkdir -p bin
    "$go" build -o bin/ ./validation/...
  )
  touch "$DIR/.complete"
}

mkdir -p "$DIR"
build_suite
if $build_only; then echo "$DIR/suite"; exit 0; fi
[[ $(id -u) == 0 ]] || { echo "validate.sh: run as root (the validations create containers)" >&2; exit 1; }

cd "$DIR/suite"
if ((${#only[@]})); then names=("${only[@]}"); else mapfile -t names < <(ls bin); fi

runtime_path() {
  case $1 in
    veil) echo "${VEIL:-$repo/dist/cli.js}" ;;
    *) command -v "$1" ;;
  esac
}

# The runtime's default --root, where the validations' containers live.
state_root() {
  case $1 in
    veil) echo /run/veil ;;
    *) echo "/run/$1" ;;
  esac
}

# Runs one validation; 0 when it passed. Keeps its TAP output. Containers
# it left behind (a validation killed by the timeout cleans up nothing) are
# deleted, so that they cannot fail the next ones (the cgroup validations
# share one cgroup path); the TAP output says so.
run_one() {
  local runtime=$1 name=$2 out=$DIR/results/$1/$2.tap status=0 root id
  local -A before=()
  root=$(state_root "$runtime")
  for id in $(ls "$root" 2>/dev/null); do before[$id]=1; done
  RUNTIME=$(runtime_path "$runtime") timeout -k 5 "$per_test_timeout" "bin/$name" >"$out" 2>&1 || status=$?
  ((status == 124 || status == 137)) && echo "# validate.sh: timed out after ${per_test_timeout}s" >>"$out"
  for id in $(ls "$root" 2>/dev/null); do
    [[ -n ${before[$id]:-} ]] && continue
    echo "# validate.sh: deleting container $id it left behind" >>"$out"
    "$(runtime_path "$runtime")" delete --force "$id" >>"$out" 2>&1 || true
  done
  ((status == 0)) && grep -q '^ok' "$out" && ! grep -q '^not ok' "$out"
}

summary=()
for runtime in "${runtimes[@]}"; do
  rm -rf "$DIR/results/$runtime"
  mkdir -p "$DIR/results/$runtime"
  passed=0
  failed=()
  for name in "${names[@]}"; do
    [[ -x bin/$name ]] || { echo "validate.sh: no validation named $name" >&2; exit 2; }
    if run_one "$runtime" "$name"; then
      passed=$((passed + 1))
    else
      failed+=("$name")
    fi
  done
  summary+=("$runtime $passed/${#names[@]}")
  echo "# $runtime fails: ${failed[*]:-none}"
done
joined=$(printf '%s, ' "${summary[@]}")
echo "${joined%, }"
