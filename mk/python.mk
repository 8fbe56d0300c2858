# Python package (bindings/python): a pyo3 abi3 wheel built by maturin, tested with pytest.
#
#   make build-python   wheel into dist/ (maturin from .venv/)
#   make test-python    install that wheel into .venv/, then pytest (incl. conformance
#                       scenarios), mypy --strict, stubtest, and the example
#   make bench-python   choose+finish vs an empty method call -> target/bench/python.md

PY_DIR := bindings/python
PY_TOOLS_STAMP := $(VENV)/.peerlb-python-tools
# Pinned majors; maturin builds the wheel, the rest test it.
PY_TOOLS := "maturin>=1.9,<2" "pytest>=8" "mypy>=1.11"

BUILD_TARGETS += build-python
TEST_TARGETS += test-python
BENCH_TARGETS += bench-python
DEMO_TARGETS += demo-python

.PHONY: build-python test-python bench-python demo-python python-tools

$(PY_TOOLS_STAMP): | $(PY)
	$(PY) -m pip install --quiet $(PY_TOOLS)
	touch $@

python-tools: $(PY_TOOLS_STAMP)

# Builds in the workspace target/ (shared with `cargo build`), so core is compiled once.
build-python: $(PY_TOOLS_STAMP)
	rm -f dist/peerlb-*.whl
	CARGO_TARGET_DIR=$(CURDIR)/target $(VENV)/bin/maturin build --release \
		--manifest-path $(PY_DIR)/Cargo.toml --out dist --quiet
	@ls -l dist/peerlb-*.whl

# Installs the wheel just built (not the source tree) and tests that.
test-python: build-python
	$(PY) -m pip install --quiet --force-reinstall --no-deps dist/peerlb-*.whl
	cd $(PY_DIR) && $(PY) -m pytest -q tests
	$(PY) -m mypy --strict $(PY_DIR)/tests/typed_usage.py examples/python/round_robin_http.py
	$(PY) -m mypy.stubtest peerlb --allowlist $(PY_DIR)/stubtest-allowlist.txt
	$(PY) examples/python/round_robin_http.py --requests 12

bench-python: build-python
	$(PY) -m pip install --quiet --force-reinstall --no-deps dist/peerlb-*.whl
	mkdir -p target/bench
	$(PY) $(PY_DIR)/bench/bench_choose.py --out target/bench/python.md

demo-python: build-python
	$(PY) -m pip install --quiet --force-reinstall --no-deps dist/peerlb-*.whl
	$(PY) examples/python/round_robin_http.py
