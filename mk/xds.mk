# The xDS updater (cargo feature `xds`) on every surface, against a real ADS control plane:
# tests/xds/ads_server.py (grpcio + xds-protos, installed into the repo's venv here), which
# each test starts on loopback and stops. The builds are the updaters' feature builds of
# mk/updaters.mk (UPD_FEATURES has both etcd and xds), so no surface is compiled again.
#
#   make test-updaters-xds          Rust: the unit tests and core/tests/xds_updater.rs
#   make test-updaters-c-xds        C: tests/c/updaters_xds.c against target/updaters-c
#   make test-updaters-python-xds   Python: bindings/python/tests_xds/ with the feature wheel
#   make test-updaters-node-xds     Node: bindings/node/__test_xds__/ with the feature addon

XDS_PY_STAMP := $(VENV)/.peerlb-xds-server
XDS_PY_PACKAGES := "grpcio>=1.60,<2" "xds-protos>=1.60,<2"

TEST_TARGETS += test-updaters-xds test-updaters-c-xds test-updaters-python-xds test-updaters-node-xds

.PHONY: xds-python test-updaters-xds test-updaters-c-xds test-updaters-python-xds test-updaters-node-xds

$(XDS_PY_STAMP): | $(PY)
	$(PY) -m pip install --quiet $(XDS_PY_PACKAGES)
	touch $@

xds-python: $(XDS_PY_STAMP)

test-updaters-xds: updaters-etcd-tools xds-python
	$(CARGO) test -p peerlb --features $(UPD_FEATURES) --lib updater::xds::
	PEERLB_PYTHON=$(PY) $(CARGO) test -p peerlb --features $(UPD_FEATURES) --test xds_updater -- --nocapture

test-updaters-c-xds: updaters-c-lib xds-python
	$(C_CC) $(C_CFLAGS) -D_GNU_SOURCE -o $(UPD_C)/updaters_xds tests/c/updaters_xds.c \
		-L$(UPD_C) -Wl,-rpath,$(UPD_C) -lpeerlb -lpthread
	PEERLB_PYTHON=$(PY) $(UPD_C)/updaters_xds

test-updaters-python-xds: updaters-python-wheel xds-python
	cd bindings/python && PEERLB_PYTHON=$(PY) $(PY) -m pytest -q -p no:cacheprovider -s tests_xds

test-updaters-node-xds: updaters-node-addon xds-python
	cd bindings/node && PEERLB_PYTHON=$(PY) PEERLB_NODE_ADDON=$(CURDIR)/target/updaters-node/peerlb.node \
		$(NODE) --test __test_xds__/
