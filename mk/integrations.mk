# The HTTP integrations (the core's request rule inside the clients people use): the C
# test of peerlb_request_rule_* / peerlb_request_call_*, and the libcurl example, which
# balances real requests over four local servers (one killed halfway) and checks the
# results. The Python (httpx, requests), Node (undici, http.Agent) and Rust (tower) tests
# run with their surfaces' suites; so do examples/python/http_clients.py and
# examples/node/http_clients.js, which `make demo-python` / `make demo-node` run first
# (their demo traffic goes through the integrations).
#
#   make test-integrations-c   the C test (plain, valgrind, ASan+UBSan) and the libcurl example
#   make demo-libcurl          the libcurl example
#   make bench-integrations-rust, bench-integrations-c
#                              the tower layer's and libcurl's cost per request (part of
#                              bench-integrations, with Python's and Node's)
#
# libcurl's headers (Debian's libcurl4-openssl-dev) are installed with apt-get when
# missing; without them this FAILS.

TEST_TARGETS += test-integrations-c

.PHONY: test-integrations-c curl-tools demo-libcurl

curl-tools:
	@if ! pkg-config --exists libcurl 2>/dev/null; then \
		echo "installing libcurl4-openssl-dev"; \
		apt-get update -qq && apt-get install -y -qq libcurl4-openssl-dev >/dev/null; \
	fi
	@pkg-config --exists libcurl || { echo "ERROR: no libcurl headers; the libcurl example cannot build" >&2; exit 1; }

$(C_BIN)/request_rule: tests/c/request_rule.c tests/c/testutil.h include/peerlb.h | build-c

$(C_ASAN)/request_rule: tests/c/request_rule.c tests/c/testutil.h include/peerlb.h | build-c

$(C_BIN)/libcurl: examples/c/libcurl.c examples/c/libcurl_balanced.h include/peerlb.h | build-c curl-tools
	mkdir -p $(C_BIN)
	$(C_CC) $(C_CFLAGS) -o $@ $< $(C_LDFLAGS) $$(pkg-config --cflags --libs libcurl)

# The libcurl integration's cost per request (bench-integrations below).
$(C_BIN)/libcurl_bench: examples/c/libcurl_bench.c examples/c/libcurl_balanced.h include/peerlb.h | build-c curl-tools
	mkdir -p $(C_BIN)
	$(C_CC) $(C_CFLAGS) -o $@ $< $(C_LDFLAGS) $$(pkg-config --cflags --libs libcurl)

test-integrations-c: c-tools $(C_BIN)/request_rule $(C_ASAN)/request_rule $(C_BIN)/libcurl
	$(C_BIN)/request_rule
	$(VALGRIND) $(C_BIN)/request_rule
	ASAN_OPTIONS=detect_leaks=1 $(C_ASAN)/request_rule
	$(C_BIN)/libcurl

demo-libcurl: $(C_BIN)/libcurl
	$(C_BIN)/libcurl

# Python: the integrations' tests (bindings/python/tests/test_httpx.py, test_requests.py)
# run in test-python's pytest; httpx and requests (the package's optional extras) go into
# .venv/ first. Their types: mypy --strict over the tests that use them.
PY_HTTP_STAMP := $(VENV)/.peerlb-http-clients
TEST_TARGETS += test-python-integrations-types

.PHONY: test-python-integrations-types

$(PY_HTTP_STAMP): | $(PY)
	$(PY) -m pip install --quiet "httpx>=0.25" "requests>=2.32"
	touch $@

test-python: $(PY_HTTP_STAMP)
PY_OLDEST_TEST_DEPS += "httpx>=0.25" "requests>=2.32"
demo-python: $(PY_HTTP_STAMP)

test-python-integrations-types: test-python
	MYPY_CACHE_DIR=/dev/null $(PY) -m mypy --strict $(PY_DIR)/tests/test_httpx.py \
		$(PY_DIR)/tests/test_requests.py $(PY_DIR)/tests/http_backends.py

# Node: the integrations' tests (bindings/node/__test__/undici.test.js, http_agent.test.js)
# run in test-node-suite and need undici (a devDependency) installed; their types are
# checked against @types/node and undici's own.
TEST_TARGETS += test-node-integrations-types

.PHONY: test-node-integrations-types

test-node-suite: node-deps
test-node-example: node-deps
demo-node: node-deps

test-node-integrations-types: node-deps
	cd $(NODE_PKG) && ./node_modules/.bin/tsc -p __test__/tsconfig.integrations.json

# The integrations' cost per request: each client with and without peerlb against the same
# local keep-alive servers, in the same run (target/bench/python-http.md, node-http.md,
# rust-http.md for the tower layer around hyper-util's client (benches/benches/tower_http.rs),
# c-http.md for libcurl (examples/c/libcurl_bench.c); about a minute after the builds).
#
# The Rust and C benches run with their servers on one CPU (BENCH_HTTP_PIN; empty: not
# pinned). Unpinned, on a 2-core machine shared with other work, a loopback round trip's
# time depended on where the scheduler put the server's thread: one variant or the other
# was 3-8x slower for a whole run, at random, which swamped the 1-2 us being measured. On
# one CPU a round trip is two context switches, and runs agree.
BENCH_HTTP_PIN ?= taskset -c 0
BENCH_TARGETS += bench-integrations

.PHONY: bench-integrations bench-integrations-rust bench-integrations-c

bench-integrations: build-python build-node node-deps $(PY_HTTP_STAMP) bench-integrations-rust \
		bench-integrations-c
	mkdir -p target/bench
	$(PY_INSTALL) --no-index --find-links dist peerlb
	$(PY) $(PY_DIR)/bench/bench_http_clients.py --out target/bench/python-http.md
	cd $(NODE_PKG) && $(NODE) bench/http_clients.js --out $(CURDIR)/target/bench/node-http.md

# The tower layer around hyper-util's client (target/bench/rust-http.md).
bench-integrations-rust:
	mkdir -p target/bench
	$(CARGO) bench -p peerlb-benches --bench tower_http --no-run
	$(BENCH_HTTP_PIN) $(CARGO) bench -p peerlb-benches --bench tower_http -- \
		--out $(CURDIR)/target/bench/rust-http.md

# libcurl with the request rule and CURLOPT_CONNECT_TO (target/bench/c-http.md).
bench-integrations-c: $(C_BIN)/libcurl_bench
	mkdir -p target/bench
	$(BENCH_HTTP_PIN) $(C_BIN)/libcurl_bench --out $(CURDIR)/target/bench/c-http.md
