#!/usr/bin/env bash
# make bench-c: choose+finish per call through the C ABI (a C program linked to
# libpeerlb.so) vs the Rust API, and the same C entry points called from Rust; writes
# target/bench/c-ffi.md and appends it to target/bench/summary.md.
set -euo pipefail
cbench=$1 rbench=$2 out=$3
n=${PEERLB_BENCH_N:-1000000}
mkdir -p "$out"
c=$("$cbench" "$n")
r=$("$rbench" "$n")
f=$("$rbench" --ffi "$n")
{
  echo "## C ABI: choose + finish (ns per call, best of 5, $n calls, 8 peers)"
  echo
  echo "$(uname -m), $(nproc) cores; C: tests/c/bench.c via libpeerlb.so; Rust: ffi/examples/choose_bench.rs"
  echo
  echo "| strategy | threads | Rust API | C via libpeerlb.so | C entry points from Rust | C / Rust |"
  echo "|---|---|---|---|---|---|"
  while read -r _ strategy threads cns; do
    rns=$(awk -v s="$strategy" -v t="$threads" '$2==s && $3==t {print $4}' <<<"$r")
    fns=$(awk -v s="$strategy" -v t="$threads" '$2==s && $3==t {print $4}' <<<"$f")
    ratio=$(awk -v a="$cns" -v b="$rns" 'BEGIN {printf "%.2f", a / b}')
    echo "| $strategy | $threads | $rns | $cns | $fns | $ratio |"
  done <<<"$c"
  echo
} >"$out/c-ffi.md"
cat "$out/c-ffi.md"
cat "$out/c-ffi.md" >>"$out/summary.md"
