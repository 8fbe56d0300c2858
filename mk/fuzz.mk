# Fuzzing with cargo-fuzz (libFuzzer) on the nightly toolchain, targets in fuzz/:
#
#   spec_parsers     strategy, transport and ejection specs, DNS record kinds
#   file_parser      the file updater's parser
#   list_operations  the conformance operations in random sequences, against the model
#   c_abi            every C entry point with arbitrary bytes for strings and lengths
#   dns_answers      DNS responses through the DNS updater's answer handling
#
#   make fuzz FUZZ_SECONDS=600   every target for that long (default 60 s each)
#   make test-fuzz               every target for 20 s (part of `make test`); fails on a crash
#   make fuzz-seeds              rewrites the seed corpus from the conformance scenarios and
#                                the tests (core/tests/fuzz_seeds.rs)
#
# The committed corpus (fuzz/corpus/<target>/) is read; what a run adds goes to
# target/fuzz-corpus/<target>/, crashes to fuzz/artifacts/<target>/ (ignored by git).
# Executions per target are written to target/fuzz/summary.md. cargo-fuzz is installed
# with `cargo install` when missing; without a nightly toolchain the targets are skipped,
# and said so.

TEST_TARGETS += test-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := spec_parsers file_parser list_operations c_abi dns_answers
FUZZ_TARGET_DIR := $(CURDIR)/target/fuzz
FUZZ := cd $(CURDIR)/fuzz && $(CARGO) +nightly fuzz

.PHONY: fuzz test-fuzz fuzz-tools fuzz-seeds

fuzz-tools:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked --quiet

# $(call fuzz-run,SECONDS)
define fuzz-run
	@if ! $(CARGO) +nightly --version >/dev/null 2>&1; then \
	  echo "fuzz: no nightly toolchain here; skipped"; exit 0; fi; \
	$(MAKE) --no-print-directory fuzz-tools && \
	$(FUZZ) build --target-dir $(FUZZ_TARGET_DIR) && \
	mkdir -p $(FUZZ_TARGET_DIR) && \
	printf '| target | seconds | executions | corpus (committed + new) |\n|---|---:|---:|---:|\n' > $(FUZZ_TARGET_DIR)/summary.md && \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(CURDIR)/target/fuzz-corpus/$$t; \
	  echo "fuzz: $$t for $(1) s"; \
	  $(FUZZ) run --target-dir $(FUZZ_TARGET_DIR) $$t \
	    $(CURDIR)/target/fuzz-corpus/$$t $(CURDIR)/fuzz/corpus/$$t \
	    -- -max_total_time=$(1) -print_final_stats=1 -rss_limit_mb=4096 \
	    > $(FUZZ_TARGET_DIR)/$$t.log 2>&1 || { tail -n 60 $(FUZZ_TARGET_DIR)/$$t.log; \
	      echo "fuzz: $$t FAILED (reproducer in fuzz/artifacts/$$t/)"; exit 1; }; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_TARGET_DIR)/$$t.log | tail -n1); \
	  units=$$(ls $(CURDIR)/fuzz/corpus/$$t $(CURDIR)/target/fuzz-corpus/$$t | wc -l); \
	  echo "fuzz: $$t: $$runs executions, no crash"; \
	  echo "| $$t | $(1) | $$runs | $$units |" >> $(FUZZ_TARGET_DIR)/summary.md; \
	done; \
	cat $(FUZZ_TARGET_DIR)/summary.md
endef

fuzz:
	$(call fuzz-run,$(FUZZ_SECONDS))

test-fuzz:
	$(call fuzz-run,20)
	@if [ -n "$${CI:-}" ]; then rm -rf $(FUZZ_TARGET_DIR)/x86_64-unknown-linux-gnu; fi

fuzz-seeds:
	PEERLB_WRITE_FUZZ_SEEDS=1 $(CARGO) test -q -p peerlb --test fuzz_seeds -- --nocapture
