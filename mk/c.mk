# The C ABI: libpeerlb.so / libpeerlb.a from ffi/, include/peerlb.h, the C tests,
# the C example, the C benchmark and `make install`.
#
#   make build-c    target/c/lib/libpeerlb.so{,.MAJOR,.VERSION} and libpeerlb.a
#   make header     regenerate include/peerlb.h with the pinned cbindgen
#   make test-c     symbols, header (C99 + C++17), C tests plain, under valgrind and ASan+UBSan
#                   (health.c and updaters.c: valgrind here, plain and ASan in their own
#                   fragments), the example, and an install into a temp dir built with pkg-config
#   make bench-c    C vs Rust choose+finish -> target/bench/c-ffi.md (+ summary.md)
#   make install PREFIX=/usr/local DESTDIR=
#
# Nothing beyond the Rust toolchain, cc/c++, valgrind and pkg-config is needed; the last
# two are installed with apt-get when missing.

PEERLB_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
PEERLB_MAJOR := $(word 1,$(subst ., ,$(PEERLB_VERSION)))

C_OUT := $(CURDIR)/target/c
C_LIB := $(C_OUT)/lib
C_BIN := $(C_OUT)/bin
C_ASAN := $(C_OUT)/asan
C_SO := $(C_LIB)/libpeerlb.so.$(PEERLB_VERSION)
C_CC ?= cc
C_CXX ?= c++
C_WARN := -Wall -Wextra -Werror
C_CFLAGS := -std=c99 -pedantic $(C_WARN) -g -O1 -I$(CURDIR)/include -I$(CURDIR)/tests/c
C_LDFLAGS := -L$(C_LIB) -Wl,-rpath,$(C_LIB) -lpeerlb -lpthread
C_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
VALGRIND := valgrind -q --error-exitcode=1 --errors-for-leak-kinds=definite --leak-check=full
C_TESTS := conformance bad_input threads ejection extreme_arguments
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DESTDIR ?=

BUILD_TARGETS += build-c
TEST_TARGETS += test-c
BENCH_TARGETS += bench-c
INSTALL_TARGETS += install-c
DEMO_TARGETS += demo-c

.PHONY: build-c header test-c c-tools c-symbols c-header-check c-run c-valgrind c-asan \
	c-cxx c-example c-install-test bench-c install-c demo-c c-conformance-selftest

# ---- the library ----

build-c:
	$(CARGO) build --release -p peerlb-ffi
	mkdir -p $(C_LIB)
	cp -f target/release/libpeerlb_ffi.so $(C_SO)
	cp -f target/release/libpeerlb_ffi.a $(C_LIB)/libpeerlb.a
	ln -sf libpeerlb.so.$(PEERLB_VERSION) $(C_LIB)/libpeerlb.so.$(PEERLB_MAJOR)
	ln -sf libpeerlb.so.$(PEERLB_MAJOR) $(C_LIB)/libpeerlb.so
	sed -e 's|@PREFIX@|$(CURDIR)|; s|@LIBDIR@|$(C_LIB)|; s|@INCLUDEDIR@|$(CURDIR)/include|; s|@VERSION@|$(PEERLB_VERSION)|' \
		ffi/peerlb.pc.in > $(C_LIB)/peerlb.pc

header:
	PEERLB_BLESS=1 $(CARGO) test -p peerlb-ffi --test header

# ---- tests ----

c-tools:
	@if ! command -v valgrind >/dev/null || ! command -v pkg-config >/dev/null; then \
		echo "installing valgrind and pkg-config"; \
		apt-get update -qq && apt-get install -y -qq valgrind pkg-config >/dev/null; \
	fi

$(C_BIN)/conformance: tests/c/conformance.c tests/c/json.c tests/c/json.h include/peerlb.h | build-c
$(C_BIN)/bad_input: tests/c/bad_input.c tests/c/testutil.h include/peerlb.h | build-c
$(C_BIN)/threads: tests/c/threads.c tests/c/testutil.h include/peerlb.h | build-c
$(C_BIN)/ejection: tests/c/ejection.c tests/c/testutil.h include/peerlb.h | build-c
$(C_BIN)/extreme_arguments: tests/c/extreme_arguments.c tests/c/testutil.h include/peerlb.h | build-c
$(C_BIN)/%:
	mkdir -p $(C_BIN)
	$(C_CC) $(C_CFLAGS) -D_GNU_SOURCE -o $@ $(filter %.c,$^) $(C_LDFLAGS)

$(C_ASAN)/%: tests/c/%.c tests/c/json.c | build-c
	mkdir -p $(C_ASAN)
	$(C_CC) $(C_CFLAGS) $(C_SAN) -D_GNU_SOURCE -o $@ $< $(if $(filter conformance,$*),tests/c/json.c) $(C_LDFLAGS)

c-symbols: build-c
	bash tests/c/check_symbols.sh $(C_SO) $(PEERLB_MAJOR)

# The committed header must be fresh (ffi/tests/header.rs also runs in `cargo test`) and
# compile as strict C99 and as C++17.
c-header-check:
	$(CARGO) test -q -p peerlb-ffi --test header
	printf '#include "peerlb.h"\nint main(void){return PEERLB_OK;}\n' | \
		$(C_CC) -std=c99 -pedantic $(C_WARN) -Iinclude -x c -fsyntax-only -
	printf '#include "peerlb.h"\nint main(){return PEERLB_OK;}\n' | \
		$(C_CXX) -std=c++17 -pedantic $(C_WARN) -Iinclude -x c++ -fsyntax-only -

# The conformance runner must be able to fail: on a scenario with an unknown op, and on a
# directory with fewer scenarios than its minimum (tests/c/conformance-must-fail/).
c-conformance-selftest: $(C_BIN)/conformance
	mkdir -p $(C_OUT)
	if $(C_BIN)/conformance tests/c/conformance-must-fail 2> $(C_OUT)/must-fail.err; then \
		echo "FAIL: the conformance runner passed a scenario with an unknown op"; exit 1; fi
	grep -q "unknown op" $(C_OUT)/must-fail.err
	grep -q "expected at least" $(C_OUT)/must-fail.err
	@echo "conformance self-test: 1 passed, 0 failed"

c-run: $(addprefix $(C_BIN)/,$(C_TESTS)) c-conformance-selftest
	$(C_BIN)/conformance tests/conformance
	$(C_BIN)/bad_input
	$(C_BIN)/threads
	$(C_BIN)/ejection
	$(C_BIN)/extreme_arguments

# health and updaters are built by mk/health.mk and mk/updaters.mk (which run them plain and
# under ASan); valgrind runs them here with the others.
c-valgrind: c-tools $(addprefix $(C_BIN)/,$(C_TESTS) health updaters) $(C_BIN)/cxx_smoke
	$(VALGRIND) $(C_BIN)/conformance tests/conformance
	$(VALGRIND) $(C_BIN)/bad_input
	$(VALGRIND) $(C_BIN)/threads
	$(VALGRIND) $(C_BIN)/ejection
	$(VALGRIND) $(C_BIN)/extreme_arguments
	$(VALGRIND) $(C_BIN)/health
	$(VALGRIND) $(C_BIN)/updaters
	$(VALGRIND) $(C_BIN)/cxx_smoke

$(C_ASAN)/cxx_smoke: tests/c/cxx_smoke.cpp include/peerlb.h | build-c
	mkdir -p $(C_ASAN)
	$(C_CXX) -std=c++17 $(C_WARN) -g $(C_SAN) -I$(CURDIR)/include -o $@ $< $(C_LDFLAGS)

c-asan: $(addprefix $(C_ASAN)/,$(C_TESTS)) $(C_ASAN)/cxx_smoke
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
		$(C_ASAN)/conformance tests/conformance
	ASAN_OPTIONS=detect_leaks=1 $(C_ASAN)/bad_input
	ASAN_OPTIONS=detect_leaks=1 $(C_ASAN)/threads
	ASAN_OPTIONS=detect_leaks=1 $(C_ASAN)/ejection
	ASAN_OPTIONS=detect_leaks=1 $(C_ASAN)/extreme_arguments
	ASAN_OPTIONS=detect_leaks=1 $(C_ASAN)/cxx_smoke

$(C_BIN)/cxx_smoke: tests/c/cxx_smoke.cpp include/peerlb.h | build-c
	mkdir -p $(C_BIN)
	$(C_CXX) -std=c++17 $(C_WARN) -g -I$(CURDIR)/include -o $@ $< $(C_LDFLAGS)

c-cxx: $(C_BIN)/cxx_smoke
	$(C_BIN)/cxx_smoke

$(C_BIN)/basic: examples/c/basic.c include/peerlb.h | build-c
	mkdir -p $(C_BIN)
	$(C_CC) $(C_CFLAGS) -D_GNU_SOURCE -o $@ $< $(C_LDFLAGS)

$(C_BIN)/retry: examples/c/retry.c include/peerlb.h | build-c
	mkdir -p $(C_BIN)
	$(C_CC) $(C_CFLAGS) -D_GNU_SOURCE -o $@ $< $(C_LDFLAGS)

c-example: $(C_BIN)/basic $(C_BIN)/retry
	$(C_BIN)/basic
	$(C_BIN)/retry

c-install-test: build-c c-tools
	bash tests/c/install_test.sh

test-c: build-c c-tools c-symbols c-header-check c-run c-cxx c-example c-valgrind c-asan c-install-test
	@echo "test-c: every C suite passed"

demo-c: $(C_BIN)/basic
	$(C_BIN)/basic

# ---- bench ----

$(C_BIN)/bench: tests/c/bench.c include/peerlb.h | build-c
	mkdir -p $(C_BIN)
	$(C_CC) -std=c99 $(C_WARN) -O2 -D_GNU_SOURCE -I$(CURDIR)/include -o $@ $< $(C_LDFLAGS)

bench-c: $(C_BIN)/bench
	$(CARGO) build -q --release -p peerlb-ffi --example choose_bench
	bash tests/c/bench.sh $(C_BIN)/bench target/release/examples/choose_bench target/bench

# ---- install ----

install-c: build-c
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 755 $(C_SO) $(DESTDIR)$(LIBDIR)/libpeerlb.so.$(PEERLB_VERSION)
	ln -sf libpeerlb.so.$(PEERLB_VERSION) $(DESTDIR)$(LIBDIR)/libpeerlb.so.$(PEERLB_MAJOR)
	ln -sf libpeerlb.so.$(PEERLB_MAJOR) $(DESTDIR)$(LIBDIR)/libpeerlb.so
	install -m 644 $(C_LIB)/libpeerlb.a $(DESTDIR)$(LIBDIR)/libpeerlb.a
	install -m 644 include/peerlb.h $(DESTDIR)$(INCLUDEDIR)/peerlb.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(PEERLB_VERSION)|' \
		ffi/peerlb.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/peerlb.pc
