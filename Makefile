# zshare: the two commands a newcomer runs. `make demo` and `make test` install what is missing
# (Debian packages, idempotent), configure and build with CMake, then run.
BUILD ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo

.PHONY: all deps configure build test test-asan fuzz demo bench-broker clean

all: build

deps:
	@tools/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The suite under AddressSanitizer + UndefinedBehaviorSanitizer, in its own build tree.
test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DZSHARE_SANITIZE=address,undefined >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ctest --output-on-failure -j$(JOBS)

# libFuzzer over the broker's request path, from tests/fuzz/corpus, for FUZZ_SECONDS (default 60).
FUZZ_SECONDS ?= 60
fuzz: deps
	@EXTRA_PACKAGES="clang libclang-rt-14-dev" tools/install-deps.sh
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZSHARE_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target zshare-fuzz-dispatcher
	@mkdir -p build-fuzz/corpus && cp -n tests/fuzz/corpus/* build-fuzz/corpus/ 2>/dev/null || true
	@build-fuzz/tests/fuzz/zshare-fuzz-dispatcher -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	  -print_final_stats=1 build-fuzz/corpus

demo: build
	@tools/demo.sh $(BUILD)

# The broker benchmark (not a test): FILES=1000000 USERS=10000 by default; see README "Performance".
bench-broker: deps
	@cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-release -j$(JOBS) --target zshare-broker zshare-bench-load
	@ZSHARE_BUILD=build-release bench/run_broker_bench.sh

clean:
	rm -rf $(BUILD) build-release build-asan build-fuzz
