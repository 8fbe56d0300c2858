# Updaters (issue 9): the C test of peerlb_updater_* (static, file, DNS against a DNS
# server the test runs on 127.0.0.1), plain and under ASan+UBSan. The Rust tests
# (core/tests/updaters.rs), Python (bindings/python/tests/test_updaters.py) and Node
# (bindings/node/__test__/updaters.test.js) tests run with their suites.

TEST_TARGETS += test-updaters-c

.PHONY: test-updaters-c

$(C_BIN)/updaters: tests/c/updaters.c tests/c/testutil.h include/peerlb.h | build-c

test-updaters-c: $(C_BIN)/updaters $(C_ASAN)/updaters
	$(C_BIN)/updaters
	$(C_ASAN)/updaters
