# Updaters (issue 9): the C test of peerlb_updater_* (static, file, DNS against a DNS
# server the test runs on 127.0.0.1), plain and under ASan+UBSan. The Rust tests
# (core/tests/updaters.rs), Python (bindings/python/tests/test_updaters.py) and Node
# (bindings/node/__test__/updaters.test.js) tests run with their suites.

TEST_TARGETS += test-updaters-c

.PHONY: test-updaters-c

$(C_BIN)/updaters: tests/c/updaters.c tests/c/testutil.h include/peerlb.h | build-c

test-updaters-c: $(C_BIN)/updaters $(C_ASAN)/updaters
	$(C_BIN)/updaters
	$(C_ASAN)/updaters

# The feature builds of the updaters: every surface is built once with both optional
# updaters (etcd here, xDS in mk/xds.mk), so their tests share one compile per surface.
UPD_FEATURES := etcd,xds

# The etcd updater (cargo feature `etcd` of core: etcd-client needs protoc to build) against
# a real etcd server the test starts on free loopback ports. etcd-server and
# protobuf-compiler are installed with apt-get when missing; without them this FAILS.
TEST_TARGETS += test-updaters-etcd

.PHONY: updaters-etcd-tools test-updaters-etcd

updaters-etcd-tools:
	@if ! command -v etcd >/dev/null || ! command -v protoc >/dev/null; then \
		echo "installing etcd-server and protobuf-compiler"; \
		apt-get update -qq && apt-get install -y -qq etcd-server protobuf-compiler >/dev/null; \
	fi
	@command -v etcd >/dev/null || { echo "ERROR: no etcd binary; the etcd updater test cannot run" >&2; exit 1; }
	@command -v protoc >/dev/null || { echo "ERROR: no protoc; etcd-client cannot build" >&2; exit 1; }

test-updaters-etcd: updaters-etcd-tools
	$(CARGO) clippy -p peerlb --features $(UPD_FEATURES) --all-targets -- -D warnings
	$(CARGO) test -p peerlb --features $(UPD_FEATURES) --test etcd_updater -- --nocapture

# Python's peerlb.EtcdUpdater, from a wheel built with the binding's `etcd` feature
# (installed into .venv/ over the plain one), against a real etcd.
TEST_TARGETS += test-updaters-python-etcd
UPD_DIST := $(CURDIR)/target/updaters-dist

.PHONY: updaters-python-wheel test-updaters-python-etcd

# The wheel with the optional updaters, installed into .venv/ (once per make run).
updaters-python-wheel: updaters-etcd-tools $(PY_TOOLS_STAMP)
	rm -rf $(UPD_DIST)
	CARGO_TARGET_DIR=$(CURDIR)/target $(VENV)/bin/maturin build --release \
		--manifest-path bindings/python/Cargo.toml --out $(UPD_DIST) --quiet --features $(UPD_FEATURES)
	$(PY) -m pip install --quiet --force-reinstall --no-deps $(UPD_DIST)/peerlb-*.whl

test-updaters-python-etcd: updaters-python-wheel
	cd bindings/python && $(PY) -m pytest -q -p no:cacheprovider -s tests_etcd tests/test_updaters.py

# C's peerlb_updater_bind_etcd, against a libpeerlb built with the ffi's `etcd` feature
# (its own copy under target/updaters-c, so the plain target/c library stays as it is).
TEST_TARGETS += test-updaters-c-etcd
UPD_C := $(CURDIR)/target/updaters-c

.PHONY: updaters-c-lib test-updaters-c-etcd

# libpeerlb with the optional updaters, under target/updaters-c (once per make run).
updaters-c-lib: updaters-etcd-tools
	$(CARGO) build --release -p peerlb-ffi --features $(UPD_FEATURES)
	mkdir -p $(UPD_C)
	cp -f target/release/libpeerlb_ffi.so $(UPD_C)/libpeerlb.so.$(PEERLB_MAJOR)
	ln -sf libpeerlb.so.$(PEERLB_MAJOR) $(UPD_C)/libpeerlb.so

test-updaters-c-etcd: updaters-c-lib
	$(C_CC) $(C_CFLAGS) -D_GNU_SOURCE -o $(UPD_C)/updaters_etcd tests/c/updaters_etcd.c \
		-L$(UPD_C) -Wl,-rpath,$(UPD_C) -lpeerlb -lpthread
	$(UPD_C)/updaters_etcd

# Node's EtcdUpdater, with an addon built with the binding's `etcd` feature (loaded through
# PEERLB_NODE_ADDON, so bindings/node/peerlb.node stays the plain one).
TEST_TARGETS += test-updaters-node-etcd

.PHONY: updaters-node-addon test-updaters-node-etcd

# The addon with the optional updaters, under target/updaters-node (once per make run).
updaters-node-addon: updaters-etcd-tools
	$(CARGO) build --release -p peerlb-node --lib --features $(UPD_FEATURES)
	mkdir -p $(CURDIR)/target/updaters-node
	cp -f target/release/libpeerlb_node.so $(CURDIR)/target/updaters-node/peerlb.node

test-updaters-node-etcd: updaters-node-addon
	cd bindings/node && PEERLB_NODE_ADDON=$(CURDIR)/target/updaters-node/peerlb.node \
		$(NODE) --test __test_etcd__/ __test__/updaters.test.js
