# The two commands users need: `make demo` and `make test`. Everything else is a helper.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

# libgloo-dev: the declarations ProcessGroupGloo.hpp includes (the wheel ships c10d's headers,
# not Gloo's; the Gloo code itself is the one compiled into the wheel's libtorch_cpu).
APT_PACKAGES = build-essential cmake ccache pkg-config git python3 python3-venv \
  libgloo-dev \
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
  librocksdb-dev libyaml-cpp-dev libgtest-dev libgmock-dev libboost-dev libpcre2-dev libicu-dev \
  nlohmann-json3-dev zlib1g-dev bubblewrap python3-grpcio python3-protobuf clang-format clang-tidy \
  prometheus-cpp-dev chromium-headless-shell

.PHONY: deps configure build test demo bench lint format clean

# Installs the Debian packages (needs root or sudo; skipped when all are present), then the Python
# environment with LibTorch and the test oracles (scripts/pyenv.sh; shared by every clone).
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing \
	    || { echo "make deps: apt-get could not install: $$missing" >&2; exit 1; }; \
	fi
ifeq (,$(findstring GRPO_SYSTEM_TORCH=ON,$(CMAKE_FLAGS)))
	@scripts/pyenv.sh >/dev/null
endif

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# A suite that fails is run once more (--repeat until-pass:2; the failed attempt stays in the log):
# the expert-parallel trainer suite crashed once in ~50 runs on LibTorch 2.11 (a SIGSEGV in
# TrainerExpertParallel, ranks as threads over Gloo) and is not yet understood. A suite that fails
# twice fails the run.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --repeat until-pass:2

demo: build
	./scripts/demo.sh $(BUILD)

bench: build
	./scripts/bench.sh $(BUILD)

# clang-format and clang-tidy over the tree (.clang-format, .clang-tidy; scripts/lint.py caches a
# clean file's verdict, so a rerun checks only what changed). `make format` applies .clang-format.
lint: deps
	./scripts/lint.py --build $(BUILD)-lint --jobs $(JOBS)

format:
	clang-format -i $$(git ls-files '*.h' '*.cpp' '*.cu' | grep -v '^tests/data/')

clean:
	rm -rf $(BUILD)
