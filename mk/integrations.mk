# The HTTP integrations (the core's request rule inside the clients people use): the C
# test of peerlb_request_rule_* / peerlb_request_call_*, and the libcurl example, which
# balances real requests over four local servers (one killed halfway) and checks the
# results. The Python (httpx, requests), Node (undici, http.Agent) and Rust (tower) tests
# run with their surfaces' suites.
#
#   make test-integrations-c   the C test (plain, valgrind, ASan+UBSan) and the libcurl example
#   make demo-libcurl          the libcurl example
#
# libcurl's headers (Debian's libcurl4-openssl-dev) are installed with apt-get when
# missing; without them this FAILS.

TEST_TARGETS += test-integrations-c

.PHONY: test-integrations-c curl-tools demo-libcurl

curl-tools:
	@if ! pkg-config --exists libcurl 2>/dev/null; then \
		echo "installing libcurl4-openssl-dev"; \
		apt-get update -qq && apt-get install -y -qq libcurl4-openssl-dev >/dev/null; \
	fi
	@pkg-config --exists libcurl || { echo "ERROR: no libcurl headers; the libcurl example cannot build" >&2; exit 1; }

$(C_BIN)/request_rule: tests/c/request_rule.c tests/c/testutil.h include/peerlb.h | build-c

$(C_ASAN)/request_rule: tests/c/request_rule.c tests/c/testutil.h include/peerlb.h | build-c

$(C_BIN)/libcurl: examples/c/libcurl.c include/peerlb.h | build-c curl-tools
	mkdir -p $(C_BIN)
	$(C_CC) $(C_CFLAGS) -o $@ $< $(C_LDFLAGS) $$(pkg-config --cflags --libs libcurl)

test-integrations-c: c-tools $(C_BIN)/request_rule $(C_ASAN)/request_rule $(C_BIN)/libcurl
	$(C_BIN)/request_rule
	$(VALGRIND) $(C_BIN)/request_rule
	ASAN_OPTIONS=detect_leaks=1 $(C_ASAN)/request_rule
	$(C_BIN)/libcurl

demo-libcurl: $(C_BIN)/libcurl
	$(C_BIN)/libcurl
