# The WebSocket balancer example (examples/wsbalancer, package peerlb-wsbalancer).
#
#   make test-wsbalancer   its tests against real processes: the wsbalancer binary, backends
#                          and clients on Python's `websockets` (installed into .venv/)
#   make demo-wsbalancer   20 clients, 3 backends, one killed and one failed over by the
#                          admin API; prints per-client counts, failovers, disconnects (0)
#                          and the failover gap; writes target/demo/wsbalancer.md
#
# Its Rust unit tests (protocol, valves) run with `cargo test --workspace`.

WSB_TOOLS_STAMP := $(VENV)/.peerlb-wsbalancer-tools
# Pinned major: the tests use websockets' asyncio API (websockets >= 13).
WSB_TOOLS := "websockets>=13,<18" "pytest>=8"

TEST_TARGETS += test-wsbalancer
DEMO_TARGETS += demo-wsbalancer

.PHONY: test-wsbalancer demo-wsbalancer

$(WSB_TOOLS_STAMP): | $(PY)
	$(PY) -m pip install --quiet $(WSB_TOOLS)
	touch $@

test-wsbalancer: $(WSB_TOOLS_STAMP)
	$(CARGO) build -p peerlb-wsbalancer --bins
	cd examples/wsbalancer && WSBALANCER_BIN=$(CURDIR)/target/debug $(PY) -m pytest -q -p no:cacheprovider tests

demo-wsbalancer:
	$(CARGO) build --release -p peerlb-wsbalancer --bins
	$(CURDIR)/target/release/wsdemo
