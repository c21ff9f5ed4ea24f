#!/usr/bin/env bash
# Builds the Debian test rootfs the userland tests run in the sandbox:
# debootstrap --variant=minbase plus python3, sqlite3, gcc, make, procps,
# inotify-tools.
#
# Usage: scripts/build-rootfs.sh [DIR]
# DIR defaults to $VEIL_ROOTFS or /var/cache/veil/rootfs-bookworm. A finished
# rootfs (marked by .veil-rootfs-complete, which names what it holds) is
# reused, so CI builds it once per machine; a half-built one is removed and
# rebuilt. Concurrent runs for the same DIR wait for each other (flock), so
# a second build never runs into the same directory. $VEIL_DEBIAN_MIRROR
# overrides the mirror (default: the machine's apt source). Needs root
# (debootstrap creates device nodes and chroots); re-runs itself with sudo
# otherwise.
set -euo pipefail

dir=${1:-${VEIL_ROOTFS:-/var/cache/veil/rootfs-bookworm}}
packages=python3,sqlite3,gcc,libc6-dev,make,coreutils,procps,tar,gzip,findutils,bsdutils,inotify-tools
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${VEIL_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}
marker="$dir/.veil-rootfs-complete"
stamp="bookworm minbase $packages"

complete() { [[ -f $marker && $(cat "$marker") == "$stamp" ]]; }

if complete; then
  echo "rootfs: reusing $dir"
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  exec sudo --preserve-env=VEIL_ROOTFS "$0" "$@"
fi

mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
if ! flock -n 9; then
  echo "rootfs: another build of $dir is running; waiting for it"
  flock 9
fi
if complete; then
  echo "rootfs: reusing $dir (built meanwhile)"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  echo "rootfs: installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
fi
rm -rf "$dir"
tmp="$dir.partial"
log="$dir.log"
rm -rf "$tmp"
echo "rootfs: debootstrap bookworm into $dir (from $mirror; takes a few minutes)"
if ! debootstrap --variant=minbase --include="$packages" bookworm "$tmp" "$mirror" >"$log" 2>&1; then
  {
    echo "rootfs: debootstrap failed; the end of its log ($log):"
    tail -n 20 "$log"
    [[ -f $tmp/debootstrap/debootstrap.log ]] && {
      echo "rootfs: the end of $tmp/debootstrap/debootstrap.log:"
      tail -n 20 "$tmp/debootstrap/debootstrap.log"
    }
    echo "rootfs: is $mirror reachable? (a mirror comes from /etc/apt/sources.list.d/debian.sources)"
  } >&2
  exit 1
fi
# The sandbox gets its own /proc and /dev from the sentry; nothing of the
# build machine's may remain inside.
rm -rf "$tmp/proc"/* "$tmp/dev"/* "$tmp/var/cache/apt/archives"/*.deb
for tool in python3 sqlite3 gcc make ps tar sha256sum bash; do
  [[ -x $tmp/usr/bin/$tool ]] || { echo "rootfs: $tool is missing from the built rootfs (see $log)" >&2; exit 1; }
done
rm -f "$log"
mv "$tmp" "$dir"
echo "$stamp" >"$marker"
echo "rootfs: ready in $dir"
