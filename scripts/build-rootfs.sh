#!/usr/bin/env bash
# Builds the Debian test rootfs the userland tests run in the sandbox:
# debootstrap --variant=minbase plus python3, sqlite3, gcc, make, procps.
#
# Usage: scripts/build-rootfs.sh [DIR]
# DIR defaults to $VEIL_ROOTFS or /var/cache/veil/rootfs-bookworm. A finished
# rootfs (marked by .veil-rootfs-complete) is reused, so CI builds it once
# per machine; a half-built one is removed and rebuilt.
set -euo pipefail

dir=${1:-${VEIL_ROOTFS:-/var/cache/veil/rootfs-bookworm}}
packages=python3,sqlite3,gcc,libc6-dev,make,coreutils,procps,tar,gzip,findutils,bsdutils
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
marker="$dir/.veil-rootfs-complete"
stamp="bookworm minbase $packages"

if [[ -f $marker && $(cat "$marker") == "$stamp" ]]; then
  echo "rootfs: reusing $dir"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  sudo=$([[ $(id -u) == 0 ]] || echo sudo)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends debootstrap
fi
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
tmp="$dir.partial"
rm -rf "$tmp"
echo "rootfs: debootstrap bookworm into $dir (from $mirror)"
debootstrap --variant=minbase --include="$packages" bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1 || {
  tail -20 "$tmp.log" >&2
  exit 1
}
rm -f "$tmp.log"
# The sandbox gets its own /proc and /dev from the sentry; nothing of the
# build machine's may remain inside.
rm -rf "$tmp/proc"/* "$tmp/dev"/* "$tmp/var/cache/apt/archives"/*.deb
mv "$tmp" "$dir"
echo "$stamp" >"$marker"
echo "rootfs: ready in $dir"
