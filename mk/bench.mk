# Benchmarks (benches/, see benches/README.md).
#
# `make bench` runs every registered bench target, then `bench-summary`, which writes
# target/bench/summary.md from criterion's results plus every target/bench/*.md fragment
# other surfaces wrote.
#
# Ordering: bench-summary is itself in BENCH_TARGETS (so the root `bench` target runs it)
# and depends on every *other* BENCH_TARGETS entry. Its prerequisites use secondary
# expansion, so they are read after all mk/*.mk files have appended their targets, and the
# summary runs last even under `make -j`. Other surfaces just do
#     BENCH_TARGETS += bench-<surface>
# and write target/bench/<surface>.md.

BENCH_TARGETS += bench-rust bench-summary

.PHONY: bench-rust bench-summary bench-summary-only

# choose+finish for every strategy at 10/100/1000 peers on 1 and 2 threads, plus the mutex
# baseline (54 criterion benchmarks, about 3 minutes after the build); then peerlb next to
# tower's p2c balancer at 100 peers (4 benchmarks, benches/vs_tower.rs).
bench-rust:
	$(CARGO) bench -p peerlb-benches --bench choose --bench vs_tower

BENCH_SUMMARY = $(CARGO) run --quiet --release -p peerlb-benches --bin bench-summary

.SECONDEXPANSION:
bench-summary: $$(filter-out bench-summary,$$(BENCH_TARGETS))
	$(BENCH_SUMMARY)

# Rewrites summary.md from whatever results exist, without running any benchmark.
bench-summary-only:
	$(BENCH_SUMMARY)
