# vllmc build. `make` builds build/vllmc and build/libvllmc.a.
#   make test         unit + golden + CLI tests
#   make asan         the test suite under ASan+UBSan (clang), in build/asan (the fault-injection build)
#   make fuzz         libFuzzer targets (clang), each run FUZZ_SECONDS
#   make test-faults  allocation N fails, swept over N (ASan+UBSan+LSan, clang), in build/asan
#   make test-long    what CI does not run: every fuzz target for 5 minutes
#   make test-arm64   the CPU kernels cross-built for arm64, run under qemu-user (make test runs it too)
#   make VLLM_TARGET_DEVICE=cpu   a CPU-only build: no GPU code is compiled
VLLM_TARGET_DEVICE ?= auto
ifeq ($(filter $(VLLM_TARGET_DEVICE),auto cpu),)
$(error VLLM_TARGET_DEVICE must be auto or cpu (got '$(VLLM_TARGET_DEVICE)'))
endif

CC ?= cc
BUILD ?= build
OPT ?= -O2
SAN ?=
FUZZ_SECONDS ?= 20
# fuzz targets run side by side (each libFuzzer process uses one core)
FUZZ_JOBS ?= 2

ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
# Only *_avx2.c files get these; the rest of the code stays baseline x86-64 and
# picks the AVX2 kernels at run time when the CPU has them.
SIMD_FLAGS := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx2 -mfma -mf16c -mavx512f -mavx512bw
AVX512BF16_FLAGS := $(AVX512_FLAGS) -mavx512bf16 -mamx-tile -mamx-bf16
endif
# arm64: only *_neon_bf16.c (BFMMLA) and *_neon_fhm.c (FMLAL) get these, picked at run time by HWCAP /
# sysctl; the rest stays the compiler's default arm64 target.
ifneq ($(filter $(ARCH),aarch64 arm64),)
NEON_BF16_FLAGS := -march=armv8.6-a+bf16
NEON_FHM_FLAGS := -march=armv8.2-a+fp16+fp16fml
endif

CPPFLAGS += -Isrc -Iinclude -D_GNU_SOURCE -DVLLMC_TARGET_DEVICE_$(VLLM_TARGET_DEVICE)
CFLAGS_ALL = -std=c11 -g $(OPT) $(SAN) -Wall -Wextra -Werror -pthread -MMD -MP $(CFLAGS)
LDLIBS += -lmicrohttpd -lcurl -lcjson -lpcre2-8 -lutf8proc -lm -pthread

LIB_SRC := $(shell find src -name '*.c' ! -path 'src/cli/*' ! -name main.c | sort)
ifeq ($(VLLM_TARGET_DEVICE),cpu)
# No GPU code at all: the Vulkan backend is neither compiled nor linked.
LIB_SRC := $(filter-out src/backend/vulkan/%,$(LIB_SRC))
else
# The Vulkan backend: GLSL compiled to SPIR-V by glslc here, embedded as C arrays; the loader
# (libvulkan) is opened at run time, so nothing Vulkan is linked.
CPPFLAGS += -DVLLMC_HAVE_VULKAN
GLSLC ?= glslc
SHADERS := $(sort $(wildcard src/backend/vulkan/shaders/*.comp))
SPV_H := $(SHADERS:src/backend/vulkan/shaders/%.comp=$(BUILD)/shaders/%.spv.h)
LDLIBS += -ldl
endif
CLI_SRC := src/main.c $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BUILD)/vllmc $(BUILD)/libvllmc.a

$(BUILD)/libvllmc.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/vllmc: $(CLI_OBJ) $(BUILD)/libvllmc.a
	$(CC) $(CFLAGS_ALL) -o $@ $(CLI_OBJ) $(BUILD)/libvllmc.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/shaders/%.spv.h: src/backend/vulkan/shaders/%.comp $(wildcard src/backend/vulkan/shaders/*.glsl)
	@mkdir -p $(@D)
	$(GLSLC) --target-env=vulkan1.1 -O -fshader-stage=compute -mfmt=c -o $@ $<

$(BUILD)/obj/src/backend/vulkan/vk_pipeline.o: src/backend/vulkan/vk_pipeline.c $(SPV_H)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -I$(BUILD)/shaders $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) $(SIMD_FLAGS) -c -o $@ $<

$(BUILD)/obj/%_avx512.o: %_avx512.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) $(AVX512_FLAGS) -c -o $@ $<

$(BUILD)/obj/%_avx512bf16.o: %_avx512bf16.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) $(AVX512BF16_FLAGS) -c -o $@ $<

$(BUILD)/obj/%_neon_bf16.o: %_neon_bf16.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) $(NEON_BF16_FLAGS) -c -o $@ $<

$(BUILD)/obj/%_neon_fhm.o: %_neon_fhm.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) $(NEON_FHM_FLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libvllmc.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(BUILD)/libvllmc.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/faults/%.c $(wildcard tests/unit/*.h) $(BUILD)/libvllmc.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(BUILD)/libvllmc.a $(LDFLAGS) $(LDLIBS)

# Unit and golden tests (C), then the CLI contract tests (shell, against build/vllmc); each one's
# wall time is printed after it. The tests run every backend the build and machine have: the CPU,
# and the GPU where --device gpu opens (lavapipe in CI). VLLMC_TEST_GPU=1 (./test.sh sets it) makes
# the GPU passes required, so a GPU that stops opening fails instead of being skipped; a CPU-only
# build has no GPU passes.
VLLMC_TEST_GPU ?=
ifeq ($(VLLM_TARGET_DEVICE),cpu)
TEST_ENV := VLLMC_TEST_GPU=0
else
TEST_ENV := VLLMC_TEST_GPU=$(VLLMC_TEST_GPU)
endif
test: all $(TEST_BIN)
	@set -e; for t in $(TEST_BIN); do echo "== $$t"; s=$$SECONDS; $(TEST_ENV) $$t; echo "   ($$((SECONDS - s)) s)"; done
	@set -e; for t in tests/cli/test_*.sh; do echo "== $$t"; s=$$SECONDS; \
	  $(TEST_ENV) VLLMC=$(BUILD)/vllmc bash $$t; echo "   ($$((SECONDS - s)) s)"; done
	@echo "all tests passed"

# ASan + UBSan over the whole suite, GPU passes included. LeakSanitizer needs two things from the
# Vulkan libraries: they must still be loaded at exit to be named (build/asan/lsan_keep_vulkan.so,
# preloaded, keeps the loader, drivers and layers from being dlclosed), and tests/lsan.supp names
# the validation layer's own leaks. intercept_tls_get_addr=0: with glibc 2.36 this LeakSanitizer
# (clang 14) misreads the dynamic TLS of such libraries at exit and crashes ("Tracer caught signal
# 11"); without it LeakSanitizer does not scan dynamic TLS, which can only add reports, never hide
# one of vllmc's (all of vllmc's TLS is static).
ASAN_BUILD := build/asan
ASAN_ENV = LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0$${LSAN_OPTIONS:+:$$LSAN_OPTIONS}" \
  ASAN_OPTIONS="intercept_tls_get_addr=0$${ASAN_OPTIONS:+:$$ASAN_OPTIONS}" \
  LD_PRELOAD="$(CURDIR)/$(ASAN_BUILD)/lsan_keep_vulkan.so$${LD_PRELOAD:+ $$LD_PRELOAD}"
# The same build serves make test-faults (below): -DVLLMC_FAULTS and the allocation wrappers count
# allocations but fail none unless a test arms them, so the suite runs as in any other build (and
# test_grammar_compile adds its allocation-failure sweep); one clang build instead of two (~95 s of CI).
FAULTS_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,--wrap=aligned_alloc
ASAN_ARGS = BUILD=$(ASAN_BUILD) CC=clang OPT=-O1 LDFLAGS="$(FAULTS_WRAP)" \
  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -DVLLMC_FAULTS"
# built first without the preload, so that no compiler runs with it
asan: $(ASAN_BUILD)/lsan_keep_vulkan.so
	$(MAKE) $(ASAN_ARGS) all $(TEST_BIN:$(BUILD)/%=$(ASAN_BUILD)/%)
	$(ASAN_ENV) $(MAKE) $(ASAN_ARGS) test

# Not linked into vllmc and built without sanitizers: every process of the test run loads it.
$(ASAN_BUILD)/lsan_keep_vulkan.so: tests/lsan_keep_vulkan.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

# Fault injection (src/base/fault.h): the asan build's flags plus -DVLLMC_FAULTS, and every binary
# linked with --wrap for the allocation functions, so that allocation number N of vllmc's own code
# (and cJSON's) fails; tests/faults/test_faults.c sweeps N over each operation below HTTP. The same
# LeakSanitizer set-up as make asan. FAULTS_ARGS=... passes options to the test (-v: every message;
# -only NAME -n N with VLLMC_FAULT_TRACE=1: where allocation N fails). ASAN_OPTIONS=fast_unwind_on_malloc=0
# gives leak stacks through libcjson (which has no frame pointers), at 3x the time.
# make asan's build (build/asan) is that build.
FAULTS_BUILD := $(ASAN_BUILD)
FAULTS_MAKE_ARGS = $(ASAN_ARGS)
# Then the same through the whole server: tests/js/server_faults.mjs sends each kind of request
# (completion, chat, streaming, tokenize, detokenize) with `X-Vllmc-Fault-Alloc: N` to
# build/asan/vllmc, N = 1, 2, ... (that header does nothing in a build without -DVLLMC_FAULTS).
test-faults: $(ASAN_BUILD)/lsan_keep_vulkan.so
	$(MAKE) $(FAULTS_MAKE_ARGS) all $(FAULTS_BUILD)/tests/test_faults
	@s=$$SECONDS; $(ASAN_ENV) $(FAULTS_BUILD)/tests/test_faults $(FAULTS_ARGS) || exit 1; echo "   ($$((SECONDS - s)) s)"
	@s=$$SECONDS; $(ASAN_ENV) VLLMC=$(FAULTS_BUILD)/vllmc node tests/js/server_faults.mjs || exit 1; \
	  echo "   ($$((SECONDS - s)) s)"

# The NEON paths, which no x86-64 build compiles: the CPU kernels and their tests cross-compiled for
# arm64 and run under qemu-aarch64 (tests/cli/test_arm64.sh, in build/arm64); a missing cross compiler
# or qemu fails here (make test skips then, unless VLLMC_TEST_GPU=1).
test-arm64:
	VLLMC_TEST_ARM64=1 VLLMC=$(BUILD)/vllmc bash tests/cli/test_arm64.sh
.PHONY: test-arm64

# The slow suites CI does not run: every fuzz target for FUZZ_LONG_SECONDS (5 minutes) each.
FUZZ_LONG_SECONDS ?= 300
test-long:
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_LONG_SECONDS)

# Fuzz targets link the library built with fuzzer instrumentation; `make -j N fuzz` builds the library and
# the targets N at a time (test.sh passes its job count), then runs FUZZ_JOBS targets at a time.
FUZZ_BUILD := build/fuzz
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/bin/%)
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
ifneq ($(BUILD),$(FUZZ_BUILD))
$(FUZZ_BUILD)/libvllmc.a: FORCE
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang OPT=-O1 SAN="$(FUZZ_SAN)" $(FUZZ_BUILD)/libvllmc.a
endif
$(FUZZ_BUILD)/bin/%: tests/fuzz/%.c $(FUZZ_BUILD)/libvllmc.a
	@mkdir -p $(@D)
	@echo "== build $*"
	clang $(CPPFLAGS) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_BUILD)/libvllmc.a $(LDLIBS)
fuzz: $(FUZZ_BIN)
	@mkdir -p $(FUZZ_BUILD)/log; printf '%s\n' $(FUZZ_SRC) | xargs -P $(FUZZ_JOBS) -I{} bash -c '\
	  n=$$(basename {} .c); mkdir -p $(FUZZ_BUILD)/corpus/$$n; seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
	  $(FUZZ_BUILD)/bin/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
	    $(FUZZ_BUILD)/corpus/$$n $$seeds > $(FUZZ_BUILD)/log/$$n.log 2>&1; rc=$$?; \
	  echo "== $$n, $(FUZZ_SECONDS)s: exit $$rc"; tail -n $$(( rc ? 60 : 3 )) $(FUZZ_BUILD)/log/$$n.log; exit $$(( rc ? 255 : 0 ))'
FORCE:
.PHONY: FORCE fuzz

clean:
	rm -rf build

# The README's main job: install what is missing, build, serve the demo model on 127.0.0.1:8000.
run:
	./run.sh

.PHONY: all test asan test-faults test-long fuzz clean run
SHELL := /bin/bash
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
