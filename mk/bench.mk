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

BENCH_TARGETS += bench-rust bench-scale bench-previous bench-summary

.PHONY: bench-rust bench-scale bench-previous bench-summary bench-summary-only

# choose+finish for every strategy at 10/100/1000 peers on 1 and 2 threads, plus the mutex
# baseline (54 criterion benchmarks, about 3 minutes after the build); then peerlb next to
# tower's p2c balancer at 100 peers (4 benchmarks, benches/vs_tower.rs).
bench-rust:
	$(CARGO) bench -p peerlb-benches --bench choose --bench vs_tower

# The list's change path at 1 000 to 100 000 peers, every strategy, with the targets'
# verdicts (target/bench/scale.md; about 2 minutes).
bench-scale:
	$(CARGO) build --release -p peerlb-benches --bin scale
	$(CURDIR)/target/release/scale

# This core's hot path against the previous revision's, in the same run
# (target/bench/previous.md). The previous core is taken from git history (git archive,
# no worktree) and built under target/bench-previous/; a clone without that commit skips.
BENCH_PREVIOUS_REV ?= d1fb6d2
BENCH_PREVIOUS_DIR := $(CURDIR)/target/bench-previous
bench-previous:
	@if ! git -C $(CURDIR) cat-file -e '$(BENCH_PREVIOUS_REV)^{commit}' 2>/dev/null; then \
	  echo "bench-previous: $(BENCH_PREVIOUS_REV) is not in this clone's history; skipped"; \
	else \
	  rm -rf $(BENCH_PREVIOUS_DIR)/src && mkdir -p $(BENCH_PREVIOUS_DIR)/src && \
	  git -C $(CURDIR) archive $(BENCH_PREVIOUS_REV) | tar -x -C $(BENCH_PREVIOUS_DIR)/src && \
	  (cd $(BENCH_PREVIOUS_DIR)/src && CARGO_TARGET_DIR=$(BENCH_PREVIOUS_DIR)/target \
	    $(CARGO) build --release -p peerlb-benches --bin choose-loop) && \
	  $(CARGO) build --release -p peerlb-benches --bin choose-loop --bin vs-previous && \
	  $(CURDIR)/target/release/vs-previous $(BENCH_PREVIOUS_DIR)/target/release/choose-loop \
	    $(CURDIR)/target/release/choose-loop; \
	fi

BENCH_SUMMARY = $(CARGO) run --quiet --release -p peerlb-benches --bin bench-summary

.SECONDEXPANSION:
bench-summary: $$(filter-out bench-summary,$$(BENCH_TARGETS))
	$(BENCH_SUMMARY)

# Rewrites summary.md from whatever results exist, without running any benchmark.
bench-summary-only:
	$(BENCH_SUMMARY)
