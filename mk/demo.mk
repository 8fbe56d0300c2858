# `make demo` for Rust: four real HTTP/1.1 backends on 127.0.0.1, the same workload through
# every strategy, first on four healthy backends (2 s, the baseline), then with one 10x
# slower and one killed halfway (3 s); about 45 s in all. Prints a table with each
# strategy's p99 over its healthy p99 and the share sent to the slow backend, and writes
# target/demo/{table.md,latency.svg,errors.svg} (examples/rust/).
DEMO_TARGETS += demo-rust

.PHONY: demo-rust

demo-rust:
	$(CARGO) run --release -p peerlb-examples --bin demo
