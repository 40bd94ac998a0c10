# The two commands: `make run` and `make test` (see README.md).
# Everything else is a helper for them or for developers.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_CLANG?= build-clang
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
DATA       ?= ./data
CMAKE_FLAGS?=

# Debian packages the build and the tests need (libclang-rt-14-dev: the
# libFuzzer runtime, which Debian 12's clang only recommends).
PACKAGES = cmake make gcc clang pkg-config liblz4-dev libprotobuf-c-dev protobuf-c-compiler \
           librdkafka-dev librabbitmq-dev kcat libclang-rt-14-dev \
           libcurl4-openssl-dev libjansson-dev etcd-server

.PHONY: all deps build build-asan build-clang run test test-release torture bench bench-quick format clean

all: build

# Installs only what is missing; runs apt-get update once, only if needed.
deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD_ASAN) -j $(JOBS)

# Proves the tree also builds warning-free with clang.
build-clang: deps
	CC=clang cmake -S . -B $(BUILD_CLANG) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_CLANG) -j $(JOBS)

# The whole suite, under AddressSanitizer + UndefinedBehaviorSanitizer, then
# the libFuzzer smoke runs (built only by clang, label fuzz). The long
# reliability runs (label torture) are `make torture`'s.
test: build-asan build-clang
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600 -LE 'torture|fuzz'
	cd $(BUILD_CLANG) && ctest --output-on-failure -j $(JOBS) --timeout 600 -L fuzz

# The long versions of the reliability suites (docs/RELIABILITY.md): 200
# crash cycles, 100,000 idle connections, a 10-minute soak, restart time
# with 1,000 partitions. Release build; about 30-45 minutes.
torture: build
	cd $(BUILD) && ctest --output-on-failure -j 1 --timeout 3600 -L torture

# The same suite on the release build (faster, no sanitizers).
test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE 'torture|fuzz' 

run: build
	exec $(BUILD)/broker/sluiced --log.dirs=$(DATA) --listeners=127.0.0.1:9292

# Benchmarks print human-readable figures and, last, one JSON object each.
# storage_bench: 512 MiB phases alternated 6 times, so neither side runs into
# the kernel's dirty-page writeback throttling left behind by the other
# (2 GiB phases measured that throttling, not the append path).
bench: build
	$(BUILD)/bench/storage_bench --json --max-bytes 512M --rounds 6
	$(BUILD)/bench/loadgen --json
	bench/suite.sh --build $(BUILD)

# The comparison suite's quick variant (under 3 minutes): Sluice, Kafka and
# RabbitMQ side by side, docs/BENCHMARKS.md regenerated.
bench-quick: build
	bench/suite.sh --quick --build $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_CLANG)
