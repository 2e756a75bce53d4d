# Makefile — builds build/convd and the test binaries, runs the suites.
# `make run` and `make test` install missing Debian packages first (tools/install-deps.sh).

BUILD ?= build
SAN ?= 0
CC ?= cc
PKGS := openblas jansson libmicrohttpd libuv libcurl zlib

ifeq ($(SAN),1)
  override BUILD := $(BUILD)-san
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
  # -O1, the level ASan's docs recommend: at -O2 the instrumented AVX2 strip
  # kernels took 4 min to compile (dwconv_phase_avx2.c alone; 1 min at -O1)
  CFLAGS ?= -O1 -g
endif

CPPFLAGS += -I. -D_GNU_SOURCE
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -Wall -Wextra -Werror -fno-omit-frame-pointer -pthread $(SANFLAGS)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS += $(PKG_LIBS) -lm -lpthread
LDFLAGS += $(SANFLAGS)

CORE_SRC := $(wildcard core/*.c core/kernels/*.c)
PROTO_SRC := $(wildcard proto/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
TEST_SRC := $(wildcard tests/unit/test_*.c)
# helpers the tests share (tests/unit/*.c not named test_*), archived so each
# binary links only the ones it uses
TEST_HELPER_SRC := $(filter-out $(TEST_SRC),$(wildcard tests/unit/*.c))

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
PROTO_OBJ := $(PROTO_SRC:%.c=$(BUILD)/obj/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_HELPER_OBJ := $(TEST_HELPER_SRC:%.c=$(BUILD)/obj/%.o)
# the thread pool under ThreadSanitizer: its own binary (TSan cannot share one
# with the SAN=1 build's AddressSanitizer), run with the other tests
TSAN_BIN := $(BUILD)/tests/test_threadpool_tsan

# Kernels for an instruction set are named after it and compiled for it;
# the dispatch table picks them at run time only where the CPU has it.
$(BUILD)/obj/%_avx2.o: CFLAGS += -mavx2 -mfma
$(BUILD)/obj/%_avx512.o: CFLAGS += -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma

.PHONY: all deps run test build-tests unit conformance golden bench deploy-check loadtest fuzz soak valgrind generic-cpu clean
all: $(BUILD)/convd

deps:
	@tools/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libconvcore.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libconvproto.a: $(PROTO_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libconvserver.a: $(SERVER_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

LIBS := $(BUILD)/libconvserver.a $(BUILD)/libconvproto.a $(BUILD)/libconvcore.a

$(BUILD)/convd: $(BUILD)/obj/server/main.o $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libconvtest.a: $(TEST_HELPER_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libconvtest.a $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libconvtest.a $(LIBS) $(LDLIBS) -lcmocka

$(TSAN_BIN): tests/tsan/test_threadpool_tsan.c core/threadpool.c core/status.c core/conv.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 -Wall -Wextra -Werror -O1 -g -pthread -fsanitize=thread -o $@ $(filter %.c,$^)

# the tritonclient test (tests/cli/test_v2_client.sh) makes a venv and checks
# outputs with torch: make test alone must bring those too on a fresh machine
TEST_PKGS := python3-venv python3-numpy python3-torch
# builds on every core (the AVX2 kernels dominate a cold, sanitized build)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test:
	@tools/install-deps.sh $(TEST_PKGS)
	$(MAKE) --no-print-directory -j$(JOBS) build-tests
	$(MAKE) --no-print-directory unit

build-tests: $(BUILD)/convd $(TEST_BIN) $(TSAN_BIN)

# the suites without the dependency check (what test runs after deps)
unit: $(BUILD)/convd $(TEST_BIN) $(TSAN_BIN)
	@tests/run-tests.sh $(BUILD)

run: deps $(BUILD)/convd
	@tools/run.sh $(BUILD)

# differential test against torch on random models (needs python3-torch)
CONFORMANCE_MODELS ?= 200
conformance: $(BUILD)/convd
	/usr/bin/python3 tests/conformance.py --convd $(BUILD)/convd --models $(CONFORMANCE_MODELS)

# regenerates the committed golden cases (needs python3-torch)
golden:
	/usr/bin/python3 tests/gen_golden.py --out tests/golden

# kernels against PyTorch and oneDNN, side by side (needs python3-torch, libdnnl-dev)
bench: deps $(BUILD)/convd
	@bench/run.sh $(BUILD)

# builds the container image with podman and smoke-tests it, checks /metrics
# with promtool and Prometheus, validates the Kubernetes manifests
deploy-check: $(BUILD)/convd
	@tools/deploy-check.sh

# standard vs separable convolution under load: starts a server on a free port,
# writes loadtest-report/ (report.md, report.json, SVG plots)
loadtest: $(BUILD)/convd
	@tools/loadtest.sh $(BUILD)

# libFuzzer harnesses tests/fuzz/fuzz_*.c (needs clang, libclang-rt-14-dev),
# each run FUZZ_SECONDS, two at a time; crashes fail the target
FUZZ_SECONDS ?= 60
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz.sh

# the integration suites (test_server, test_faults, test_batching, tests/cli)
# with every convd process under valgrind memcheck: a definite leak or an
# invalid access fails it; summaries in $(BUILD)/valgrind/ (slow; not in test)
valgrind: $(BUILD)/convd $(TEST_BIN)
	@tests/valgrind.sh $(BUILD)

# the scalar fallback: core tests and a conformance batch with convd run on an
# emulated CPU without AVX2/FMA (qemu-user, installed when missing)
generic-cpu: $(BUILD)/convd $(TEST_BIN)
	@tests/generic-cpu.sh $(BUILD)

# 10 minutes at saturation, mixed requests: RSS, fds, p99 and errors over
# time into soak-report/ (not in CI)
SOAK_SECONDS ?= 600
soak: $(BUILD)/convd
	@SOAK_SECONDS=$(SOAK_SECONDS) tools/soak.sh $(BUILD)

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
