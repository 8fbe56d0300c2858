# `make demo` for Rust: four real HTTP/1.1 backends on 127.0.0.1 (one 10x slower, one killed
# halfway), the same workload through every strategy (2 s each, about 20 s in all); prints
# a table and writes target/demo/{table.md,latency.svg,errors.svg} (examples/rust/).
DEMO_TARGETS += demo-rust

.PHONY: demo-rust

demo-rust:
	$(CARGO) run --release -p peerlb-examples --bin demo
