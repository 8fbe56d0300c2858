# `make sim`: the balancing simulator (sim/, package peerlb-sim). Every strategy on the
# known scenarios (healthy, 1 or 2 of 4 backends 10x slower, 1 failing) in virtual time
# through the real core strategies; prints the table and writes target/sim/table.md and
# target/sim/p99.svg. Takes about a second after the build. Options:
#     make sim SIM_ARGS="--rate 5000 --seconds 60 --strategies peak-ewma,fewest-pending"
# Its tests (sim/tests/known_cases.rs) are ordinary cargo tests, run by `make test-rust`.
SIM_ARGS ?=

.PHONY: sim

sim:
	$(CARGO) run --release -p peerlb-sim -- $(SIM_ARGS)
