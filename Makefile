# ajpq — the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang
FUZZ_RUNS ?= 1000000

.PHONY: setup apt demo test test-all lint bench fuzz clean

setup: apt $(STAMP)

# Debian packages: installed only when missing, and only when running as root.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "setup: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "setup: missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; fi; \
	fi

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,hil,fpga,ray,tflite]"
	$(PY) -m pip install -q -c constraints.txt --no-deps finn-plus==1.6.1
	touch $(STAMP)

demo: setup
	$(VENV)/bin/ajpq demo

test: setup
	$(PY) -m pytest -q -m "not slow"

test-all: setup
	$(PY) -m pytest -q

# libFuzzer + ASan/UBSan on the firmware's parsers (tests/fuzz/run.py); the tests run each
# target for 30 s, this runs FUZZ_RUNS executions each and stops at the first report.
fuzz: setup
	$(PY) -m tests.fuzz.run --runs $(FUZZ_RUNS)

lint: setup
	$(VENV)/bin/ruff check sdk backends tests bench
	$(VENV)/bin/ruff format --check sdk backends tests bench

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build demo-out .pytest_cache .ruff_cache
