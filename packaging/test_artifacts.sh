#!/usr/bin/env bash
# Installs every artifact of `make dist` into a clean place and runs a smoke program:
#   1. SHA256SUMS match;
#   2. the C tarball, unpacked into a temp prefix: SONAME links, .a, header, relocatable
#      peerlb.pc, glibc <= 2.17; examples/c/basic.c and examples/c/libcurl.c built with
#      `pkg-config --cflags --libs peerlb` and run (shared), basic.c also linked statically;
#   3. each wheel in a fresh venv (pip, offline for peerlb; httpx and requests from PyPI):
#      packaging/smoke.py; the tag pip installed is manylinux_2_17;
#   4. the sdist built by pip in a fresh venv (with cargo; the build reuses target/'s
#      compiled dependencies through CARGO_TARGET_DIR), then packaging/smoke.py;
#   5. the npm tarball installed into a fresh project with no cargo on PATH (and a HOME
#      without ~/.cargo): the prebuilt addon is used, packaging/smoke.js runs; and with
#      --build-from-source and no cargo, the install says it builds from source and fails
#      for want of cargo; with cargo, it builds the addon from the package's Rust sources.
# Temp installs are removed at exit.
#
#   bash packaging/test_artifacts.sh target/dist 0.1.0
set -euo pipefail
dist=$(cd "$1" && pwd)
version=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
major=${version%%.*}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
ok() { echo "dist: ok: $*"; pass=$((pass + 1)); }
fail() { echo "dist: FAIL: $*"; echo "dist: $pass passed, 1 failed"; exit 1; }

# ---- 1. checksums ----
(cd "$dist" && sha256sum --check --quiet SHA256SUMS) || fail "SHA256SUMS"
ok "SHA256SUMS ($(wc -l < "$dist/SHA256SUMS") artifacts)"

# ---- 2. the C tarball ----
c_name=libpeerlb-$version-linux-x86_64
tar -xzf "$dist/$c_name.tar.gz" -C "$tmp"
prefix=$tmp/$c_name
lib=$prefix/lib
[[ -f $lib/libpeerlb.so.$version ]] || fail "libpeerlb.so.$version missing"
[[ $(readlink "$lib/libpeerlb.so.$major") == "libpeerlb.so.$version" ]] || fail "libpeerlb.so.$major link"
[[ $(readlink "$lib/libpeerlb.so") == "libpeerlb.so.$major" ]] || fail "libpeerlb.so link"
[[ -f $lib/libpeerlb.a && -f $prefix/include/peerlb.h ]] || fail ".a or header missing"
cmp -s "$repo/include/peerlb.h" "$prefix/include/peerlb.h" || fail "header differs from include/peerlb.h"
newest=$(objdump -T "$lib/libpeerlb.so.$version" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1)
[[ $(printf '%s\n' "$newest" GLIBC_2.17 | sort -V | tail -n1) == GLIBC_2.17 ]] || fail "libpeerlb.so needs $newest"
export PKG_CONFIG_PATH=$lib/pkgconfig
[[ $(pkg-config --modversion peerlb) == "$version" ]] || fail "pkg-config --modversion"
[[ $(pkg-config --variable=libdir peerlb) -ef $lib ]] || fail "peerlb.pc is not relocatable: libdir $(pkg-config --variable=libdir peerlb)"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror -o "$tmp/basic" "$repo/examples/c/basic.c" $(pkg-config --cflags --libs peerlb) -lpthread
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror -o "$tmp/libcurl" "$repo/examples/c/libcurl.c" $(pkg-config --cflags --libs peerlb libcurl) -lpthread
loads=$(LD_LIBRARY_PATH=$lib ldd "$tmp/basic")
[[ $loads == *"$lib/libpeerlb.so.$major"* ]] || fail "basic does not load the tarball's library"
LD_LIBRARY_PATH=$lib "$tmp/basic" > "$tmp/basic.out" || { cat "$tmp/basic.out"; fail "basic (shared)"; }
LD_LIBRARY_PATH=$lib "$tmp/libcurl" --requests 40 > "$tmp/libcurl.out" || { cat "$tmp/libcurl.out"; fail "libcurl (shared)"; }
# shellcheck disable=SC2046
cc -std=c99 -o "$tmp/basic-static" "$repo/examples/c/basic.c" $(pkg-config --cflags peerlb) "$lib/libpeerlb.a" \
  $(pkg-config --static --libs-only-l peerlb | sed 's/-lpeerlb//') -lpthread
"$tmp/basic-static" > "$tmp/basic-static.out" || { cat "$tmp/basic-static.out"; fail "basic (static)"; }
ok "C tarball ($(du -h "$dist/$c_name.tar.gz" | cut -f1)): links, pkg-config, glibc <= 2.17 (needs $newest), basic + libcurl examples (shared), basic (static): $(tail -n1 "$tmp/libcurl.out")"

# ---- 3. the wheels ----
py=python3
for wheel in "$dist"/peerlb-"$version"-*.whl; do
  venv=$tmp/venv-$(basename "$wheel" .whl)
  $py -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-index --no-deps "$wheel" 2>"$tmp/pip.err" || {
    # A wheel for a newer Python than this one (cp310 on 3.9): pip refuses it, rightly.
    grep -q "is not a supported wheel" "$tmp/pip.err" && { echo "dist: skip $(basename "$wheel"): not for $($py --version)"; continue; }
    cat "$tmp/pip.err"; fail "pip install $(basename "$wheel")"; }
  "$venv/bin/pip" install --quiet "httpx>=0.25" "requests>=2.32"
  tag=$("$venv/bin/python" -c "import importlib.metadata as m; print(' '.join(l.split(': ')[1] for l in m.distribution('peerlb').read_text('WHEEL').splitlines() if l.startswith('Tag:')))")
  [[ $tag == *manylinux_2_17_x86_64* ]] || fail "$(basename "$wheel"): installed tags $tag"
  "$venv/bin/python" "$repo/packaging/smoke.py" || fail "smoke.py with $(basename "$wheel")"
  ok "$(basename "$wheel") in a fresh venv (tags: $tag)"
  rm -rf "$venv"
done

# ---- 4. the sdist (built by pip with cargo) ----
venv=$tmp/venv-sdist
$py -m venv "$venv"
"$venv/bin/pip" install --quiet "httpx>=0.25" "requests>=2.32"
CARGO_TARGET_DIR=$repo/target "$venv/bin/pip" install --quiet --no-deps --no-binary peerlb "$dist/peerlb-$version.tar.gz" \
  || fail "pip install the sdist"
"$venv/bin/python" "$repo/packaging/smoke.py" || fail "smoke.py with the sdist's build"
ok "sdist built by pip in a fresh venv"
rm -rf "$venv"

# ---- 5. the npm tarball, with no cargo ----
node_dir=$(dirname "$(command -v node)")
npm_cache=$(npm config get cache)
no_cargo_path=$node_dir:/usr/bin:/bin
for d in ${no_cargo_path//:/ }; do [[ ! -x $d/cargo ]] || fail "cargo in $d: cannot test an install without cargo"; done
mkdir -p "$tmp/home" "$tmp/project"
cd "$tmp/project"
echo '{"name":"peerlb-dist-check","version":"1.0.0","private":true}' > package.json
run_npm() { env -i PATH="$no_cargo_path" HOME="$tmp/home" npm_config_cache="$npm_cache" "$@"; }
run_npm npm install --offline --no-audit --no-fund "$dist/peerlb-$version.tgz" > "$tmp/npm.out" 2>&1 \
  || { cat "$tmp/npm.out"; fail "npm install the tarball without cargo"; }
# undici (an optional peer) as the repo's devDependency has it, packed: no network.
undici_tgz=$(cd "$tmp" && npm pack --quiet --ignore-scripts "$repo/bindings/node/node_modules/undici" | tail -n1)
run_npm npm install --offline --no-audit --no-fund "$tmp/$undici_tgz" >> "$tmp/npm.out" 2>&1 \
  || { cat "$tmp/npm.out"; fail "npm install undici"; }
[[ -f node_modules/peerlb/peerlb.node ]] || { cat "$tmp/npm.out"; fail "no addon installed"; }
cp "$repo/packaging/smoke.js" smoke.js  # run from the project, so that it requires node_modules/peerlb
run_npm node smoke.js > "$tmp/smoke.out" 2>&1 || { cat "$tmp/smoke.out"; fail "smoke.js"; }
cat "$tmp/smoke.out"
ok "npm tarball ($(du -h "$dist/peerlb-$version.tgz" | cut -f1)) into a fresh project without cargo: prebuilt addon used"
# The message the install script gives (npm shows it with --foreground-scripts).
rm -rf node_modules package-lock.json
run_npm npm install --offline --no-audit --no-fund --foreground-scripts "$dist/peerlb-$version.tgz" > "$tmp/npm.out" 2>&1 || true
grep -q "using the prebuilt addon for linux-x64-gnu" "$tmp/npm.out" || { cat "$tmp/npm.out"; fail "the install script did not say it used the prebuilt addon"; }
rm -rf node_modules package-lock.json
if run_npm npm_config_build_from_source=true npm install --offline --no-audit --no-fund --foreground-scripts \
  "$dist/peerlb-$version.tgz" > "$tmp/npm.out" 2>&1; then
  fail "--build-from-source without cargo should fail"
fi
grep -q "asked to build from source; building the addon from source with cargo" "$tmp/npm.out" &&
  grep -q "needs a Rust toolchain (cargo)" "$tmp/npm.out" || { cat "$tmp/npm.out"; fail "the fallback did not say what it does"; }
ok "npm --build-from-source: the install script says it builds with cargo, and fails without it"
cd "$repo"
echo "dist: $pass passed, 0 failed"
