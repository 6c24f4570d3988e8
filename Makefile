# emvtap - the two commands of the README, and their parts.
#   make demo   set up (venv, packages) and run a full tap end to end, no hardware
#   make test   set up (system packages, venv, Maven deps) and run every test
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := pcscd vsmartcard-vpcd pcsc-tools libpcsclite-dev libusb-1.0-0 pkg-config gcc
PYTEST_ARGS ?=

.PHONY: demo test system-deps venv lint unit integration applets-test clean bench test-clone

demo: system-deps venv
	$(VENV)/bin/emvtap demo

test: system-deps venv
	bash scripts/pcscd-start.sh
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory applets-test
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# System packages: pcscd + vpcd for the virtual reader, libpcsclite-dev and a compiler for
# pyscard (no Linux wheel on PyPI), libusb for nfcpy, a JDK and Maven for the applets (only when
# no javac/mvn is on the PATH). Installed only when missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v javac >/dev/null || missing="$$missing default-jdk-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

lint: venv
	$(VENV)/bin/ruff check .

# JUnit tests of the Java Card applets on jcardsim (Maven Central).
applets-test:
	@if [ -f applets/pom.xml ]; then cd applets && mvn -q -B test; else echo "no applets/ yet"; fi

unit: venv
	$(PY) -m pytest -q tests/unit

integration: system-deps venv
	bash scripts/pcscd-start.sh
	$(PY) -m pytest -q tests/integration

# `make test` in a fresh clone of HEAD in an empty temporary directory: the repository stands
# alone (its test data is in tests/data/, nothing is read from beside the checkout).
test-clone:
	d=$$(mktemp -d) && git clone -q . "$$d/emvtap" && $(MAKE) -C "$$d/emvtap" test && rm -rf "$$d"

bench: system-deps venv
	bash scripts/pcscd-start.sh
	$(PY) bench/tap.py

clean:
	rm -rf $(VENV) build *.egg-info applets/target
