# Sessions from C: tests/c/sessions.c (bad input, the session listener, threads), plain,
# under valgrind and under ASan+UBSan. The shared scenarios run in test-c's conformance
# runner; the Rust, Python and Node session tests run with their suites.

TEST_TARGETS += test-sessions-c

.PHONY: test-sessions-c

$(C_BIN)/sessions: tests/c/sessions.c tests/c/testutil.h include/peerlb.h | build-c

test-sessions-c: c-tools $(C_BIN)/sessions $(C_ASAN)/sessions
	$(C_BIN)/sessions
	$(VALGRIND) $(C_BIN)/sessions
	ASAN_OPTIONS=detect_leaks=1 $(C_ASAN)/sessions
