# `make vectors`: regenerate tests/vectors/ketama.jsonl from Python's uhashring and npm's
# hashring (and check the two agree on every key). For maintainers; `make test` only reads
# the committed file (core/tests/ketama_vectors.rs).

VECTORS_NODE := $(CURDIR)/target/vectors-node

.PHONY: vectors

$(VENV)/.uhashring: | $(PY)
	$(PY) -m pip install --quiet uhashring==2.5
	touch $@

$(VECTORS_NODE)/node_modules/hashring/package.json:
	mkdir -p $(VECTORS_NODE)
	cd $(VECTORS_NODE) && npm install --silent --no-audit --no-fund --prefix . hashring@3.2.0

vectors: $(VENV)/.uhashring $(VECTORS_NODE)/node_modules/hashring/package.json
	$(PY) tests/vectors/generate.py --node-path $(VECTORS_NODE)/node_modules
	$(CARGO) test -q -p peerlb --test ketama_vectors
