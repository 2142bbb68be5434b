# The README's first two commands: `make demo` and `make test`. Both set up everything they
# need on a fresh Debian/Ubuntu machine: system libraries for headless rendering, a virtual
# environment, and the Python packages (torch pinned in the same pip command so pip takes
# the CPU build instead of a multi-GB CUDA one).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
SYSTEM_PACKAGES := libegl1 libgl1 libgl1-mesa-dri libosmesa6 libglu1-mesa chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
export MUJOCO_GL ?= egl

.PHONY: setup system demo test bench clean

setup: system $(VENV)/.installed

system:
	@if ! dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then \
		echo "installing $(SYSTEM_PACKAGES)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)" -e ".[all]"
	@touch $@

demo: setup
	$(VENV)/bin/physforge demo --out runs/demo --overwrite

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/sim_speed.py
	$(PY) bench/render_speed.py

clean:
	rm -rf runs .pytest_cache
