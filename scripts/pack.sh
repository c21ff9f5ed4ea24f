#!/usr/bin/env bash
# Packs veil for npm in napi-rs's per-platform layout:
#   veil-linux-x64-gnu-<v>.tgz  the prebuilt addon and veil-sandbox
#   veil-<v>.tgz                the CLI (dist/), yargs bundled, and the
#                               platform package as an optional dependency
# Usage: scripts/pack.sh [--no-build] [OUT_DIR]   (OUT_DIR defaults to .cache/pack)
# Prints the two tarball paths, platform package first.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=1
if [[ ${1:-} == --no-build ]]; then build=0; shift; fi
out=$(mkdir -p "${1:-$root/.cache/pack}" && cd "${1:-$root/.cache/pack}" && pwd)
platform_dir=$root/npm/linux-x64-gnu

if ((build)); then
  (cd "$root" && npm run --silent build >&2)
fi
for artifact in veil.linux-x64-gnu.node veil-sandbox; do
  [[ -f $platform_dir/$artifact ]] || { echo "pack: $platform_dir/$artifact is missing (run npm run build)" >&2; exit 1; }
done

# The main package is packed from a staging copy: the checkout's
# package.json has build scripts (prepare) that must not run for users, and
# no optionalDependencies, so that installing the checkout never asks the
# registry for a platform package that exists only as our tarball (napi-rs
# adds them at publish time for the same reason).
stage=$(mktemp -d "${TMPDIR:-/tmp}/veil-pack.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp -r "$root/dist" "$stage/dist"
[[ -f $root/README.md ]] && cp "$root/README.md" "$stage/"
node - "$root/package.json" "$platform_dir/package.json" "$stage/package.json" <<'JS'
const fs = require('node:fs');
const [main, platform, staged] = process.argv.slice(2).map((f) => f);
const pkg = JSON.parse(fs.readFileSync(main, 'utf8'));
const plat = JSON.parse(fs.readFileSync(platform, 'utf8'));
if (plat.version !== pkg.version) throw new Error(`version mismatch: ${plat.name} ${plat.version} vs ${pkg.version}`);
delete pkg.scripts;
delete pkg.devDependencies;
pkg.optionalDependencies = { [plat.name]: plat.version };
fs.writeFileSync(staged, JSON.stringify(pkg, null, 2) + '\n');
JS
# Bundle the runtime dependencies (yargs and what it needs) so the tarball
# installs without a registry.
(cd "$root" && npm ls --omit=dev --all --parseable 2>/dev/null) | while read -r dir; do
  [[ $dir == "$root" ]] && continue
  rel=${dir#"$root"/}
  mkdir -p "$stage/$(dirname "$rel")"
  cp -r "$dir" "$stage/$rel"
done

(cd "$out" && npm pack --silent --ignore-scripts "$platform_dir" && npm pack --silent --ignore-scripts "$stage") |
  sed "s|^|$out/|"
