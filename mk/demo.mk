# `make demo` for Rust: three real TCP servers on 127.0.0.1, 300 requests per strategy
# through a PeerList, and a table of what each server answered (examples/rust/).
DEMO_TARGETS += demo-rust

.PHONY: demo-rust

demo-rust:
	$(CARGO) run --release -p peerlb-examples --bin demo
