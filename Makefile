# peerlb: `make` builds, `make test` runs every suite (Rust, C, Python, Node),
# `make bench` writes target/bench/summary.md, `make demo` runs against local servers.
#
# Each surface keeps its rules in mk/<surface>.mk and registers its targets by appending
# to the *_TARGETS variables below, so the surfaces never edit each other's rules.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export CARGO_TERM_COLOR ?= never

BUILD_TARGETS :=
TEST_TARGETS :=
BENCH_TARGETS :=
DEMO_TARGETS :=
INSTALL_TARGETS :=

include $(sort $(wildcard mk/*.mk))

.PHONY: all build build-rust test lint test-rust test-rust-asan bench demo install venv clean

all: build

build: build-rust $(BUILD_TARGETS)

build-rust:
	$(CARGO) build --workspace --release

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@# Rustdoc of the core and the C library: no broken or private links.
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -q --no-deps -p peerlb -p peerlb-ffi

test-rust:
	$(CARGO) test --workspace
	@# The shared scenarios again, showing how many passed.
	$(CARGO) test -q -p peerlb --test conformance -- --show-output 2>&1 | grep -E "conformance: [0-9]+ scenarios passed"

# The core's unsafe code (the packed peer refcount, stripe locks) under AddressSanitizer with
# leak checking. Needs a nightly toolchain; skipped, and said so, where there is none.
# The model-based test runs 1 000 sequences here (10 000 in test-rust): memory errors show
# in any sequence, and ASan makes each one several times slower.
test-rust-asan:
	@if $(CARGO) +nightly --version >/dev/null 2>&1; then \
	  RUSTFLAGS="-Zsanitizer=address" CARGO_TARGET_DIR=$(CURDIR)/target/asan PROPTEST_CASES=1000 \
	    $(CARGO) +nightly test -q -p peerlb --target x86_64-unknown-linux-gnu --lib --tests; \
	  if [ -n "$${CI:-}" ]; then rm -rf $(CURDIR)/target/asan; fi; \
	else echo "test-rust-asan: no nightly toolchain here; skipped"; fi

test: lint test-rust test-rust-asan $(TEST_TARGETS)
	@echo "make test: every suite passed"

bench: $(BENCH_TARGETS)

demo: $(DEMO_TARGETS)

install: $(INSTALL_TARGETS)

# A virtualenv under the repo for everything Python (pytest, maturin, comparison libs).
venv: $(PY)
$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

clean:
	$(CARGO) clean
	rm -rf $(VENV) dist
