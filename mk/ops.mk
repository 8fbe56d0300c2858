# Operability: metrics, the admin endpoint, the http-probe and grpc-health transports,
# circuit breakers, and a real Prometheus scraping a real admin endpoint.
#
#   make test-ops-rust      the probe tests against a Python http.server and a
#                           grpcio-health-checking server (both flipping), and the admin
#                           endpoint tests with curl, with the grpc-health feature
#   make test-ops-c         tests/c/ops.c plain, under valgrind and under ASan+UBSan
#   make test-prometheus    Debian's prometheus scrapes the serve_metrics example; promtool
#                           checks the exposition; the query API must show
#                           peerlb_chosen_total{peer=...} growing
#   make bench-metrics      metrics and circuit-breaker cost on the hot path, same run
#                           (target/bench/metrics.md, in the bench summary)
#   make demo-ops           a list under traffic with its admin endpoint: prints the URL and
#                           a few scraped lines (runs after the other demos)
#
# prometheus (with promtool) and curl come from apt-get when missing; grpcio-health-checking
# goes into the repo's venv.

OPS_PY_STAMP := $(VENV)/.peerlb-ops-grpc
OPS_PY_PACKAGES := "grpcio-health-checking>=1.60,<2"

TEST_TARGETS += test-ops-rust test-ops-c test-prometheus
BENCH_TARGETS += bench-metrics
DEMO_TARGETS += demo-ops

.PHONY: ops-tools ops-python test-ops-rust test-ops-c test-prometheus bench-metrics demo-ops demo-ops-only

ops-tools:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null || ! command -v curl >/dev/null; then \
		echo "installing prometheus and curl"; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus curl >/dev/null; \
	fi
	@command -v prometheus >/dev/null || { echo "ERROR: no prometheus binary" >&2; exit 1; }
	@command -v promtool >/dev/null || { echo "ERROR: no promtool binary" >&2; exit 1; }

$(OPS_PY_STAMP): | $(PY)
	$(PY) -m pip install --quiet $(OPS_PY_PACKAGES)
	touch $@

ops-python: $(OPS_PY_STAMP)

test-ops-rust: ops-tools ops-python
	PEERLB_PYTHON=$(PY) PEERLB_REQUIRE_GRPC_HEALTH=1 \
		$(CARGO) test -p peerlb --features grpc-health --test health_probes --test admin_http -- --nocapture

$(C_BIN)/ops: tests/c/ops.c tests/c/testutil.h tests/c/netutil.h include/peerlb.h | build-c
	mkdir -p $(C_BIN)
	$(C_CC) $(C_CFLAGS) -D_GNU_SOURCE -o $@ tests/c/ops.c $(C_LDFLAGS)

$(C_ASAN)/ops: tests/c/ops.c tests/c/testutil.h tests/c/netutil.h include/peerlb.h | build-c
	mkdir -p $(C_ASAN)
	$(C_CC) $(C_CFLAGS) $(C_SAN) -D_GNU_SOURCE -o $@ tests/c/ops.c $(C_LDFLAGS)

test-ops-c: c-tools $(C_BIN)/ops $(C_ASAN)/ops
	$(C_BIN)/ops
	$(VALGRIND) $(C_BIN)/ops
	ASAN_OPTIONS=detect_leaks=1 $(C_ASAN)/ops

test-prometheus: ops-tools
	$(CARGO) build -q -p peerlb --features grpc-health --example serve_metrics
	python3 tests/ops/prometheus_scrape.py $(CURDIR)/target/debug/examples/serve_metrics

bench-metrics:
	$(CARGO) build --release -p peerlb-benches --bin metrics-cost
	$(CURDIR)/target/release/metrics-cost target/bench/metrics.md

# After every other demo, so `make demo` ends with the scraped lines (demo-ops-only: alone).
demo-ops: $$(filter-out demo-ops,$$(DEMO_TARGETS))
	$(MAKE) --no-print-directory demo-ops-only

demo-ops-only:
	$(CARGO) run -q --release -p peerlb --features grpc-health --example serve_metrics -- --seconds 3

# The admin endpoint tests in `cargo test --workspace` use curl.
test-rust: ops-tools

# The Python suite tests grpc-health against an in-process grpcio server: the package must
# be there, and a missing one fails the test instead of skipping it.
test-python: ops-python
test-python: export PEERLB_REQUIRE_GRPC_HEALTH = 1
# (Not the run under the oldest Python, whose own venv has no grpcio.)
test-python-oldest: export PEERLB_REQUIRE_GRPC_HEALTH =
