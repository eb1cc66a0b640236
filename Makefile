# zshare: the two commands a newcomer runs. `make demo` and `make test` install what is missing
# (Debian packages, idempotent), configure and build with CMake, then run.
BUILD ?= build
JOBS ?= 2
MAKEFLAGS += --no-print-directory  # also for the makes CMake runs: no "Entering directory" lines
BUILD_TYPE ?= RelWithDebInfo

.PHONY: all deps configure build test test-asan test-tsan fuzz demo bench-broker bench-sessions package clean

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

# The whole suite under ThreadSanitizer, in its own build tree: every multi-threaded component runs in it (the
# broker's log shipper, serve's seeder and session keeper, get, the time service's pool, the logger and the
# in-process servers of the unit tests). -O2 keeps TSan's slowdown near 2x on this suite. Reports go to
# build-tsan/tsan-reports/ (also from processes whose exit status a test ignores, e.g. a daemon it kills), and
# any report fails the target. tests/tsan.supp lists only false positives from libraries built without TSan.
TSAN_REPORTS = $(CURDIR)/build-tsan/tsan-reports
test-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZSHARE_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j$(JOBS)
	@rm -rf $(TSAN_REPORTS) && mkdir -p $(TSAN_REPORTS)
	@cd build-tsan && status=0; \
	  TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp log_path=$(TSAN_REPORTS)/tsan second_deadlock_stack=1" \
	    ctest --output-on-failure -j$(JOBS) || status=$$?; \
	  if [ -n "$$(ls -A $(TSAN_REPORTS))" ]; then cat $(TSAN_REPORTS)/*; \
	    echo "test-tsan: ThreadSanitizer reports from $$(ls $(TSAN_REPORTS) | wc -l) processes (above)"; exit 1; fi; \
	  exit $$status

# libFuzzer over the broker's request path, from tests/fuzz/corpus, for FUZZ_SECONDS (default 60).
FUZZ_SECONDS ?= 60
fuzz: deps
	@EXTRA_PACKAGES="clang libclang-rt-14-dev" tools/install-deps.sh
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZSHARE_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target zshare-fuzz-dispatcher
	@mkdir -p build-fuzz/corpus && cp -n tests/fuzz/corpus/* build-fuzz/corpus/ 2>/dev/null || true
	@build-fuzz/tests/fuzz/zshare-fuzz-dispatcher -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	  -print_final_stats=1 build-fuzz/corpus

# The .deb (CPack): $(BUILD)/zshare_<version>_<arch>.deb with everything `cmake --install` installs, prefix /usr.
package: build
	@cd $(BUILD) && { cpack -G DEB >cpack.log || { cat cpack.log; exit 1; }; } && sed -n 's/^CPack: - package: //p' cpack.log

# The demo builds only the programs it runs.
DEMO_TARGETS = zshare-broker zshare-peer zshare-timesvc zshare-rpclog zshare-events
demo: configure
	@cmake --build $(BUILD) -j$(JOBS) --target $(DEMO_TARGETS)
	@tools/demo.sh $(BUILD)

# The broker benchmark (not a test): FILES=1000000 USERS=10000 by default; see README "Performance".
bench-broker: deps
	@cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-release -j$(JOBS) --target zshare-broker zshare-bench-load
	@ZSHARE_BUILD=build-release bench/run_broker_bench.sh

# The many-sessions benchmark (not a test): SESSIONS=20000 by default; see README "Many sessions".
bench-sessions: deps
	@cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-release -j$(JOBS) --target zshare-broker zshare-bench-sessions
	@ZSHARE_BUILD=build-release bench/run_session_bench.sh

clean:
	rm -rf $(BUILD) build-release build-asan build-tsan build-fuzz
