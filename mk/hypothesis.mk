# The Python generated-input suite (bindings/python/tests/test_generated_input.py) needs
# hypothesis in the venv; test-python runs it with the rest of the suite.
# PEERLB_GENERATED_EXAMPLES sets the examples per test (default 200; the suite runs
# under each wheel, about 20 s each time).

PY_HYPOTHESIS_STAMP := $(VENV)/.peerlb-hypothesis

$(PY_HYPOTHESIS_STAMP): | $(PY)
	$(PY) -m pip install --quiet "hypothesis>=6.100,<7"
	touch $@

test-python: $(PY_HYPOTHESIS_STAMP)
