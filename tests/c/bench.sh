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
  if command -v valgrind >/dev/null; then
    # Instructions per choose+finish (round-robin, 1 thread) from callgrind: repeatable
    # whatever else the machine is doing. Difference of two run lengths cancels set-up.
    ir() { # program args... -> total instructions
      local f; f=$(mktemp)
      PEERLB_BENCH_ONLY=round-robin valgrind --tool=callgrind --callgrind-out-file="$f" "$@" >/dev/null 2>&1
      awk '/^summary:/ {print $2}' "$f"; rm -f "$f"
    }
    per_op() { # program [--ffi] -> instructions per op (5 timed repetitions per run)
      local a b; a=$(ir "$@" 20000); b=$(ir "$@" 40000)
      awk -v a="$a" -v b="$b" 'BEGIN {printf "%.0f", (b - a) / (5 * 20000)}'
    }
    ci=$(per_op "$cbench"); ri=$(per_op "$rbench"); fi_=$(per_op "$rbench" --ffi)
    echo "Instructions per choose+finish (callgrind, round-robin, 1 thread): Rust API $ri, C via libpeerlb.so $ci, C entry points from Rust $fi_; C / Rust = $(awk -v a="$ci" -v b="$ri" 'BEGIN {printf "%.2f", a / b}')."
    echo
  fi
  # The targets, round-robin on 1 thread: C within 1.3x the Rust API's time and 1.5x its
  # instructions.
  verdict() { awk -v x="$1" -v lim="$2" 'BEGIN {print (x != "" && x + 0 <= lim + 0) ? "met" : "**missed**"}'; }
  cns=$(awk '$2=="round-robin" && $3==1 {print $4}' <<<"$c")
  rns=$(awk '$2=="round-robin" && $3==1 {print $4}' <<<"$r")
  tr=$(awk -v a="$cns" -v b="$rns" 'BEGIN {printf "%.2f", a / b}')
  echo "| target (\`round-robin\`, 1 thread) | measured | verdict |"
  echo "|---|---:|---|"
  echo "| C time ≤ 1.3× the Rust API's | ${tr}× ($cns vs $rns ns) | $(verdict "$tr" 1.3) |"
  if [[ -n ${ci:-} ]]; then
    ir_=$(awk -v a="$ci" -v b="$ri" 'BEGIN {printf "%.2f", a / b}')
    echo "| C instructions ≤ 1.5× the Rust API's (callgrind) | ${ir_}× ($ci vs $ri) | $(verdict "$ir_" 1.5) |"
  else
    echo "| C instructions ≤ 1.5× the Rust API's (callgrind) | – | not measured (no valgrind) |"
  fi
  echo
  echo "The C choose reads the clock for a deadline only when it has to wait (\`PeerList::try_choose\` first); the Rust loop builds its request with \`with_timeout\`, which reads it at once."
  echo
} >"$out/c-ffi.md"
cat "$out/c-ffi.md"
cat "$out/c-ffi.md" >>"$out/summary.md"
