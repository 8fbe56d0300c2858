# `make soak`: chaos against real local processes for SOAK_SECONDS (default 600): eight
# HTTP backends, a list per surface (Rust in the harness, Python and Node driven as child
# processes), file and DNS updaters, clients with retries, seeded faults, invariants checked
# every second and at the end. Report and RSS/descriptor curves in target/soak/
# (report.md, rss-fds.svg); see soak/README.md. SOAK_SEED picks another fault schedule.
#
# `make test` runs the 45-second version (test-soak). Both use the Python wheel and the
# Node addon the other targets build (build-python, build-node) and the debug harness.

SOAK_SECONDS ?= 600
SOAK_SEED ?= 1
TEST_TARGETS += test-soak

.PHONY: soak test-soak soak-surfaces

soak-surfaces: build-python build-node
	$(PY_INSTALL) --no-index --find-links dist peerlb
	$(CARGO) build -q -p peerlb-soak

# $(call soak-run,SECONDS)
define soak-run
	SOAK_PYTHON=$(PY) SOAK_NODE=$(NODE) SOAK_NODE_PACKAGE=$(NODE_PKG) \
	  $(CURDIR)/target/debug/soak --seconds $(1) --seed $(SOAK_SEED) --out $(CURDIR)/target/soak
endef

soak: soak-surfaces
	$(call soak-run,$(SOAK_SECONDS))

test-soak: soak-surfaces
	$(call soak-run,45)
