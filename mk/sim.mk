# `make sim`: the balancing simulator (sim/, package peerlb-sim). Every strategy on the
# known scenarios (healthy, slow, failing, queueing, recovering backends, client stalls,
# load reports; see sim/README.md) in virtual time through the real core strategies;
# prints the table and the latency-aware default's targets with verdicts, and writes
# target/sim/table.md and target/sim/p99.svg (about 15 s after the build); then the fleet
# section (100 clients x 10 000 backends in 3 zones, full mesh against deterministic subsets,
# one zone degraded), written to target/sim/fleet.md too (about a minute). Options:
#     make sim SIM_ARGS="--rate 5000 --seconds 60 --strategies peak-ewma,fewest-pending"
#     make sim SIM_ARGS="--scenarios 2-of-4-slow,demo-stalls --strategies prequal --no-fleet"
#     make sim SIM_ARGS="--fleet-only --fleet-seconds 30"
# Its tests (sim/tests/known_cases.rs, sim/tests/fleet.rs) are ordinary cargo tests, run by `make test-rust`.
SIM_ARGS ?=

.PHONY: sim

sim:
	$(CARGO) run --release -p peerlb-sim -- $(SIM_ARGS)
