#!/usr/bin/env bash
# `make install` into temp dirs: a DESTDIR staging install has the expected layout (SONAME
# symlinks, header, peerlb.pc naming the real PREFIX), and a PREFIX install is usable:
# examples/c/basic.c builds with `pkg-config --cflags --libs peerlb` and runs, dynamically
# and statically linked.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
major=${version%%.*}
pass=0
ok() { echo "install: ok: $*"; pass=$((pass + 1)); }
fail() { echo "install: FAIL: $*"; echo "install: $pass passed, 1 failed"; exit 1; }

# 1. Staged install: DESTDIR + PREFIX.
make -s --no-print-directory install PREFIX=/opt/peerlb DESTDIR="$tmp/stage" >/dev/null
lib=$tmp/stage/opt/peerlb/lib
[[ -f $lib/libpeerlb.so.$version ]] || fail "libpeerlb.so.$version missing"
[[ $(readlink "$lib/libpeerlb.so.$major") == "libpeerlb.so.$version" ]] || fail "libpeerlb.so.$major symlink"
[[ $(readlink "$lib/libpeerlb.so") == "libpeerlb.so.$major" ]] || fail "libpeerlb.so symlink"
[[ -f $lib/libpeerlb.a ]] || fail "libpeerlb.a missing"
cmp -s include/peerlb.h "$tmp/stage/opt/peerlb/include/peerlb.h" || fail "header differs"
grep -qx 'prefix=/opt/peerlb' "$lib/pkgconfig/peerlb.pc" || fail "peerlb.pc prefix"
grep -qx "Version: $version" "$lib/pkgconfig/peerlb.pc" || fail "peerlb.pc version"
ok "DESTDIR layout"

# 2. Real install into a prefix, then build the example as a user would.
prefix=$tmp/prefix
make -s --no-print-directory install PREFIX="$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[[ $(pkg-config --modversion peerlb) == "$version" ]] || fail "pkg-config --modversion"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror -o "$tmp/basic" examples/c/basic.c $(pkg-config --cflags --libs peerlb) -lpthread
[[ $(readelf -d "$tmp/basic" | grep -c "libpeerlb.so.$major") == 1 ]] || fail "example does not need libpeerlb.so.$major"
LD_LIBRARY_PATH=$(pkg-config --variable=libdir peerlb) "$tmp/basic" >"$tmp/out.txt" || { cat "$tmp/out.txt"; fail "example run (shared)"; }
tail -n1 "$tmp/out.txt"
ok "example built with pkg-config and run against the installed libpeerlb.so"

# shellcheck disable=SC2046
cc -std=c99 -o "$tmp/basic-static" examples/c/basic.c $(pkg-config --cflags peerlb) \
  "$prefix/lib/libpeerlb.a" $(pkg-config --static --libs-only-l peerlb | sed 's/-lpeerlb//')
readelf -d "$tmp/basic-static" | grep -q libpeerlb && fail "static build still needs libpeerlb.so"
"$tmp/basic-static" >"$tmp/out-static.txt" || { cat "$tmp/out-static.txt"; fail "example run (static)"; }
ok "example linked with libpeerlb.a"
echo "install: $pass passed, 0 failed"
