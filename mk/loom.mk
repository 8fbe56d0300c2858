# loom models of the lock-free pieces (core/src/loom_models.rs): the stripe lock, a peer's
# packed reference + pending counter, the published snapshots and the event bus's one
# deliverer, every interleaving up to a preemption bound. The atomics come from
# core/src/sync.rs, which is loom's only in this build (--cfg peerlb_loom), in its own
# target folder (removed afterwards on CI). About 2 minutes from cold, most of it the build;
# the models run in seconds. Each prints how many interleavings it explored.

TEST_TARGETS += test-loom
LOOM_TARGET_DIR := $(CURDIR)/target/loom

.PHONY: test-loom

test-loom:
	RUSTFLAGS="--cfg peerlb_loom" CARGO_TARGET_DIR=$(LOOM_TARGET_DIR) \
	  $(CARGO) test -q -p peerlb --no-default-features --release --lib loom_models \
	  -- --nocapture --test-threads=1 2>&1 | tee $(LOOM_TARGET_DIR).log \
	  | grep -oE "loom: [a-z_0-9]+: [0-9]+ interleavings|test result.*"
	@grep -oE "loom: [a-z_0-9]+: [0-9]+ interleavings" $(LOOM_TARGET_DIR).log \
	  | awk '{n += $$3; m++} END {printf "loom: %d models, %d interleavings in all\n", m, n}'
	@if [ -n "$${CI:-}" ]; then rm -rf $(LOOM_TARGET_DIR); fi
