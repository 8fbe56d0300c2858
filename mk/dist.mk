# `make dist`: the release artifacts in target/dist/, made from what `make` builds (no
# second build of the workspace), and `make test-dist` (part of `make test`), which
# installs each one into a clean place and runs a smoke program against real local
# servers. `make test-dist-npm-source` also builds the npm tarball's addon from its own
# Rust sources (a full release build in a target directory of its own; not in `make test`).
#
#   target/dist/libpeerlb-<version>-linux-x86_64.tar.gz
#       lib/libpeerlb.so.<version> (+ SONAME links .so.<major>, .so), lib/libpeerlb.a,
#       lib/pkgconfig/peerlb.pc (relocatable), include/peerlb.h; the .so is linked from the
#       libpeerlb.a `make build-c` made, for glibc 2.17 (zig); the .a without debug info
#   target/dist/peerlb-<version>-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
#   target/dist/peerlb-<version>-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
#       the wheels `make build-python` makes (it links them with zig: see MATURIN_LINK),
#       checked with `auditwheel show`
#   target/dist/peerlb-<version>.tar.gz       the Python sdist (maturin; builds with cargo)
#   target/dist/peerlb-<version>.tgz          the npm package: prebuilds/linux-x64-gnu (the
#       addon `make build-node` links with zig for glibc 2.17) and the Rust sources
#   target/dist/SHA256SUMS
#
# zig comes from PyPI (`ziglang`) into .venv/, with auditwheel; the linker is maturin's
# zig wrapper (`maturin zig cc`, what `maturin build --zig` uses), given only to the final
# link of each artifact, so every crate below it is compiled once for tests and dist alike.

DIST_DIR := $(CURDIR)/target/dist
DIST_STAGE := $(CURDIR)/target/dist-stage
DIST_C_NAME := libpeerlb-$(PEERLB_VERSION)-linux-x86_64
DIST_TOOLS_STAMP := $(VENV)/.peerlb-dist-tools
# Pinned: the glibc stubs and the linker that make the artifacts.
DIST_TOOLS := "ziglang==0.17.1" "auditwheel==6.8.2"
ZIG_CC := $(CURDIR)/target/zig/cc-x86_64-linux-gnu.2.17

TEST_TARGETS += test-dist

.PHONY: dist dist-c dist-python dist-node dist-sums test-dist test-dist-npm-source dist-tools

$(DIST_TOOLS_STAMP): | $(PY)
	$(PY) -m pip install --quiet $(DIST_TOOLS)
	touch $@

dist-tools: $(ZIG_CC)

# maturin's zig wrapper (it finds zig as `python -m ziglang`, hence the venv first on PATH),
# targeting x86_64 Linux with glibc 2.17, as `maturin build --zig` does.
# The wrapper runs .venv's maturin: the Python tools must be installed first (their stamp
# is named literally, since mk/python.mk is read after this file).
$(ZIG_CC): $(DIST_TOOLS_STAMP) mk/dist.mk | $(VENV)/.peerlb-python-tools
	mkdir -p $(@D)
	printf '#!/bin/sh\n# Links for x86_64 Linux, glibc 2.17 (manylinux2014), with zig. Made by mk/dist.mk.\nPATH="%s:$$PATH" exec "%s" zig cc -- -target x86_64-linux-gnu.2.17 -g "$$@"\n' \
		'$(VENV)/bin' '$(VENV)/bin/maturin' > $@
	chmod +x $@

# The wheels and the Node addon are linked with it wherever they are built.
MATURIN_LINK := --compatibility manylinux2014 -- -C linker=$(ZIG_CC)
export PEERLB_ADDON_LINKER := $(ZIG_CC)
build-python: $(ZIG_CC)
build-node: $(ZIG_CC)
test-node-install: $(ZIG_CC)

dist: dist-c dist-python dist-node
	$(MAKE) --no-print-directory dist-sums
	@ls -l $(DIST_DIR)

dist-sums:
	cd $(DIST_DIR) && rm -f SHA256SUMS && sha256sum $(DIST_C_NAME).tar.gz peerlb-*.whl \
		peerlb-$(PEERLB_VERSION).tar.gz peerlb-$(PEERLB_VERSION).tgz > SHA256SUMS

# The C library: libpeerlb.a (from build-c) linked into the shared library for glibc 2.17,
# with the SONAME and exports of ffi/build.rs; the Rust unwinder comes from zig's libunwind.
dist-c: build-c $(ZIG_CC)
	rm -rf $(DIST_STAGE)/c && mkdir -p $(DIST_STAGE)/c/$(DIST_C_NAME)/lib/pkgconfig \
		$(DIST_STAGE)/c/$(DIST_C_NAME)/include $(DIST_DIR)
	$(ZIG_CC) -shared -s -o $(DIST_STAGE)/c/$(DIST_C_NAME)/lib/libpeerlb.so.$(PEERLB_VERSION) \
		-Wl,--whole-archive $(C_LIB)/libpeerlb.a -Wl,--no-whole-archive \
		-Wl,-soname,libpeerlb.so.$(PEERLB_MAJOR) -Wl,--version-script=$(CURDIR)/ffi/peerlb.map \
		-Wl,--gc-sections -lgcc_s -lpthread -ldl -lm -lrt -lutil -lc
	cd $(DIST_STAGE)/c/$(DIST_C_NAME)/lib && \
		ln -sf libpeerlb.so.$(PEERLB_VERSION) libpeerlb.so.$(PEERLB_MAJOR) && \
		ln -sf libpeerlb.so.$(PEERLB_MAJOR) libpeerlb.so
	cp $(C_LIB)/libpeerlb.a $(DIST_STAGE)/c/$(DIST_C_NAME)/lib/
	strip --strip-debug $(DIST_STAGE)/c/$(DIST_C_NAME)/lib/libpeerlb.a
	cp include/peerlb.h $(DIST_STAGE)/c/$(DIST_C_NAME)/include/
	sed -e 's|@PREFIX@|$${pcfiledir}/../..|; s|@LIBDIR@|$${prefix}/lib|; s|@INCLUDEDIR@|$${prefix}/include|; s|@VERSION@|$(PEERLB_VERSION)|' \
		ffi/peerlb.pc.in > $(DIST_STAGE)/c/$(DIST_C_NAME)/lib/pkgconfig/peerlb.pc
	bash tests/c/check_symbols.sh $(DIST_STAGE)/c/$(DIST_C_NAME)/lib/libpeerlb.so.$(PEERLB_VERSION) $(PEERLB_MAJOR)
	tar -C $(DIST_STAGE)/c -czf $(DIST_DIR)/$(DIST_C_NAME).tar.gz --owner=0 --group=0 $(DIST_C_NAME)
	rm -rf $(DIST_STAGE)/c

# The wheels build-python made (release), their tags and symbol versions checked; the sdist.
dist-python: build-python $(DIST_TOOLS_STAMP)
	@case "$(PY_RELEASE)" in --release) ;; *) echo "dist-python: needs release wheels (PY_RELEASE=--release)"; exit 1;; esac
	mkdir -p $(DIST_DIR) && rm -f $(DIST_DIR)/peerlb-*.whl $(DIST_DIR)/peerlb-$(PEERLB_VERSION).tar.gz
	cp dist/peerlb-$(PEERLB_VERSION)-*.whl $(DIST_DIR)/
	@for w in $(DIST_DIR)/peerlb-*.whl; do \
		shown=$$($(VENV)/bin/auditwheel show $$w 2>&1) || { echo "$$shown"; exit 1; }; \
		tag=$$(echo "$$shown" | tr '\n' ' '); \
		[[ $$tag == *'consistent with the following platform tag: "manylinux_2_17_x86_64"'* ]] || \
		{ echo "$$w: not manylinux_2_17:"; echo "$$shown"; exit 1; }; \
		echo "$$(basename $$w): auditwheel show: manylinux_2_17_x86_64"; done
	$(VENV)/bin/maturin sdist --manifest-path $(PY_DIR)/Cargo.toml --out $(DIST_DIR)

# The npm package: staged from bindings/node with the addon build-node linked (prebuilt for
# linux-x64-gnu) and the Rust sources for every other platform, then `npm pack`ed.
dist-node: build-node
	mkdir -p $(DIST_DIR) && rm -f $(DIST_DIR)/peerlb-$(PEERLB_VERSION).tgz
	$(CARGO) package -q -p peerlb --no-verify --allow-dirty --offline
	$(PY) packaging/stage_npm.py --repo $(CURDIR) --addon $(NODE_PKG)/peerlb.node \
		--core-crate target/package/peerlb-$(PEERLB_VERSION).crate --out $(DIST_STAGE)/npm
	$(CARGO) metadata -q --offline --format-version 1 --manifest-path $(DIST_STAGE)/npm/Cargo.toml > /dev/null
	cd $(DIST_STAGE)/npm && $(NPM) pack --quiet --pack-destination $(DIST_DIR) > /dev/null
	rm -rf $(DIST_STAGE)/npm target/package

# Installs every artifact into a clean place and runs a smoke program (packaging/).
test-dist: dist node-deps
	bash packaging/test_artifacts.sh $(DIST_DIR) $(PEERLB_VERSION)

# The npm tarball built from its own Rust sources (--build-from-source, with cargo), in a
# target directory of its own: a full release build, so not part of `make test`.
test-dist-npm-source: dist node-deps
	bash packaging/test_npm_from_source.sh $(DIST_DIR) $(PEERLB_VERSION)
