# Health: the tcp-probe transport and Upstream from C (real sockets on 127.0.0.1).
#
#   make test-health-c   build and run tests/c/health.c (plain and under ASan+UBSan)

TEST_TARGETS += test-health-c

.PHONY: test-health-c

$(C_BIN)/health: tests/c/health.c tests/c/testutil.h include/peerlb.h | build-c
	mkdir -p $(C_BIN)
	$(C_CC) $(C_CFLAGS) -D_GNU_SOURCE -o $@ tests/c/health.c $(C_LDFLAGS)

$(C_ASAN)/health: tests/c/health.c tests/c/testutil.h include/peerlb.h | build-c
	mkdir -p $(C_ASAN)
	$(C_CC) $(C_CFLAGS) $(C_SAN) -D_GNU_SOURCE -o $@ tests/c/health.c $(C_LDFLAGS)

test-health-c: $(C_BIN)/health $(C_ASAN)/health
	$(C_BIN)/health
	ASAN_OPTIONS=detect_leaks=1 $(C_ASAN)/health
