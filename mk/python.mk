# Python package (bindings/python): a pyo3 abi3 wheel built by maturin, tested with pytest.
#
#   make build-python   wheel into dist/ (maturin from .venv/); PY_RELEASE= for debug wheels
#   make test-python    install that wheel into .venv/, then pytest (incl. conformance
#                       scenarios), mypy --strict, stubtest, and the examples
#   make bench-python   choose+finish vs an empty method call, and hash-ring vs uhashring
#                       -> target/bench/python.md (+ python.compare.json for the summary);
#                       the change path at 10 000 / 100 000 peers -> python-scale.md

PY_DIR := bindings/python
PY_TOOLS_STAMP := $(VENV)/.peerlb-python-tools
# Pinned majors; maturin builds the wheel, the rest test it.
PY_TOOLS := "maturin>=1.9,<2" "pytest>=8" "mypy>=1.11"

BUILD_TARGETS += build-python
TEST_TARGETS += test-python
BENCH_TARGETS += bench-python
DEMO_TARGETS += demo-python

.PHONY: build-python test-python test-python-oldest bench-python demo-python python-tools

$(PY_TOOLS_STAMP): | $(PY)
	$(PY) -m pip install --quiet $(PY_TOOLS)
	touch $@

python-tools: $(PY_TOOLS_STAMP)

# Two abi3 wheels, built in the workspace target/ (shared with `cargo build`, so core is
# compiled once): cp39-abi3 (any Python >= 3.9; what `pip install ./bindings/python`
# builds) and cp310-abi3 (3.10+, faster calls; pip prefers it where it applies).
# PY_RELEASE= (empty) builds debug wheels: much faster to build while working on the
# binding (`make test-python PY_RELEASE=`); release is the default and what benchmarks use.
PY_RELEASE ?= --release
MATURIN_BUILD := CARGO_TARGET_DIR=$(CURDIR)/target $(VENV)/bin/maturin build $(PY_RELEASE) \
	--manifest-path $(PY_DIR)/Cargo.toml --out dist --quiet
PY_INSTALL := $(PY) -m pip install --quiet --force-reinstall --no-deps

build-python: $(PY_TOOLS_STAMP)
	rm -f dist/peerlb-*.whl
	$(MATURIN_BUILD)
	$(MATURIN_BUILD) --no-default-features --features abi3-py310
	@ls -l dist/peerlb-*.whl

# Tests the installed wheels (not the source tree): the whole suite against the
# Python >= 3.9 wheel, then again against the wheel pip picks for this Python.
test-python: build-python
	$(PY_INSTALL) dist/peerlb-*-cp39-abi3-*.whl
	cd $(PY_DIR) && $(PY) -m pytest -q -p no:cacheprovider tests
	$(PY_INSTALL) --no-index --find-links dist peerlb
	cd $(PY_DIR) && $(PY) -m pytest -q -p no:cacheprovider tests
	MYPY_CACHE_DIR=/dev/null $(PY) -m mypy --strict $(PY_DIR)/tests/typed_usage.py \
		examples/python/round_robin_http.py examples/python/retry_ejection_http.py
	MYPY_CACHE_DIR=/dev/null $(PY) -m mypy.stubtest peerlb
	$(PY) examples/python/round_robin_http.py --requests 12
	$(PY) examples/python/retry_ejection_http.py --requests 20
	$(MAKE) --no-print-directory test-python-oldest

# The oldest Python the cp39-abi3 wheel promises, when this machine has one (pyenv does):
# the suite again under it, in its own venv inside .venv/.
PY_OLDEST ?= $(or $(firstword $(wildcard $(HOME)/.pyenv/versions/3.9*/bin/python3.9)),python3.9)
PY_OLDEST_VENV := $(VENV)/py39
test-python-oldest:
	@if ! $(PY_OLDEST) -c "import sys; assert sys.version_info[:2] == (3, 9)" 2>/dev/null; then \
		echo "test-python-oldest: no $(PY_OLDEST) here; skipped"; exit 0; fi; \
	set -x; \
	[ -x $(PY_OLDEST_VENV)/bin/pytest ] || { $(PY_OLDEST) -m venv $(PY_OLDEST_VENV) && \
		$(PY_OLDEST_VENV)/bin/pip install --quiet "pytest>=8"; }; \
	$(PY_OLDEST_VENV)/bin/python -c "import hypothesis" 2>/dev/null || \
		$(PY_OLDEST_VENV)/bin/pip install --quiet "hypothesis>=6.100,<7"; \
	$(PY_OLDEST_VENV)/bin/pip install --quiet --force-reinstall --no-deps --no-index \
		--find-links dist peerlb; \
	cd $(PY_DIR) && $(PY_OLDEST_VENV)/bin/python -m pytest -q -p no:cacheprovider tests

# uhashring (pinned, the version tests/vectors/ was generated with) comes from the stamp
# rule in mk/vectors.mk.
bench-python: build-python $(VENV)/.uhashring
	mkdir -p target/bench
	$(PY_INSTALL) dist/peerlb-*-cp39-abi3-*.whl
	$(PY) $(PY_DIR)/bench/bench_choose.py --wheel cp39-abi3 --out target/bench/python-cp39.json
	$(PY_INSTALL) --no-index --find-links dist peerlb
	$(PY) $(PY_DIR)/bench/bench_choose.py --wheel cp310-abi3 --out target/bench/python-cp310.json
	$(PY) $(PY_DIR)/bench/bench_choose.py --report target/bench/python.md \
		target/bench/python-cp39.json target/bench/python-cp310.json
	$(PY) $(PY_DIR)/bench/bench_scale.py --out target/bench/python-scale.md

demo-python: build-python
	$(PY_INSTALL) --no-index --find-links dist peerlb
	$(PY) examples/python/round_robin_http.py
	$(PY) examples/python/retry_ejection_http.py
