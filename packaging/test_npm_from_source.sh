#!/usr/bin/env bash
# The npm tarball's other path: installed with `--build-from-source` where cargo is, its
# install script builds the addon from the package's own Rust sources (the staged
# Cargo.toml, the core crate as `cargo package` made it, the workspace's Cargo.lock),
# offline from the crates cargo already has, then packaging/smoke.js runs.
#
# The build gets a target directory of its own (removed at exit): in the workspace's
# target/ its addon would be uplifted over the workspace's (same crate name). So it
# compiles every dependency again (2.5 CPU-minutes, 6 minutes on a busy 2-core machine), which is why
# it is `make test-dist-npm-source` and not part of `make test`.
#
#   bash packaging/test_npm_from_source.sh target/dist 0.1.0
set -euo pipefail
dist=$(cd "$1" && pwd)
version=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "dist: FAIL: $*"; exit 1; }

node_dir=$(dirname "$(command -v node)")
cargo_dir=$(dirname "$(command -v "${CARGO:-cargo}")")
npm_cache=$(npm config get cache)
mkdir -p "$tmp/project"
cd "$tmp/project"
echo '{"name":"peerlb-dist-check","version":"1.0.0","private":true}' > package.json
# undici (an optional peer) as the repo's devDependency has it, packed: no network.
undici_tgz=$(cd "$tmp" && npm pack --quiet --ignore-scripts "$repo/bindings/node/node_modules/undici" | tail -n1)
env -i PATH="$cargo_dir:$node_dir:/usr/bin:/bin" HOME="$HOME" CARGO_TARGET_DIR="$tmp/target" CARGO_NET_OFFLINE=true \
  npm_config_cache="$npm_cache" npm_config_build_from_source=true \
  npm install --offline --no-audit --no-fund --foreground-scripts "$dist/peerlb-$version.tgz" "$tmp/$undici_tgz" \
  > "$tmp/npm.out" 2>&1 || { cat "$tmp/npm.out"; fail "npm install --build-from-source with cargo"; }
grep -q "asked to build from source; building the addon from source with cargo" "$tmp/npm.out" &&
  grep -q "peerlb: built peerlb.node (release)" "$tmp/npm.out" || { cat "$tmp/npm.out"; fail "the addon was not built from source"; }
rm -rf "$tmp/target"
cp "$repo/packaging/smoke.js" smoke.js # run from the project, so that it requires node_modules/peerlb
env -i PATH="$node_dir:/usr/bin:/bin" HOME="$tmp" node smoke.js
echo "dist: ok: npm tarball with --build-from-source: the addon built from the package's Rust sources with cargo, smoke.js ok"
