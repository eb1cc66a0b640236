# zshare: the two commands a newcomer runs. `make demo` and `make test` install what is missing
# (Debian packages, idempotent), configure and build with CMake, then run.
BUILD ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo

.PHONY: all deps configure build test test-asan demo bench-broker clean

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
	  ctest --output-on-failure -j$(JOBS)

demo: build
	@tools/demo.sh $(BUILD)

# The broker benchmark (not a test): FILES=1000000 USERS=10000 by default; see README "Performance".
bench-broker: deps
	@cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-release -j$(JOBS) --target zshare-broker zshare-bench-load
	@ZSHARE_BUILD=build-release bench/run_broker_bench.sh

clean:
	rm -rf $(BUILD) build-release build-asan
