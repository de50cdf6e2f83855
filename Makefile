# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out/demo

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

.PHONY: demo test test-fast lint bench bench-memory clean browser
$(BIN)/advaudit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the CPU wheel of torch first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test,ray,dev]"
	touch $@

demo: $(BIN)/advaudit
	$(BIN)/advaudit demo --out $(OUT); code=$$?; echo "open $(OUT)/report.html"; \
	  [ $$code -le 1 ] || exit $$code

# Headless Chromium from Debian packages, for the report's browser tests and --format pdf.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing chromium (Debian package) for the report tests and --format pdf"; \
	    ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	      --no-install-recommends chromium fonts-dejavu-core) >/dev/null 2>&1 || \
	    echo "warning: could not install chromium; the browser tests will be skipped"; }

test: $(BIN)/advaudit browser
	$(BIN)/python -m pytest -q

# The suite without the end-to-end runs that train models (pytest -m slow): a couple of minutes.
test-fast: $(BIN)/advaudit
	$(BIN)/python -m pytest -q -m "not slow"

# ruff (settings in pyproject [tool.ruff]) and mypy on audit/ attacks/ reports/ (pyproject [tool.mypy]).
lint: $(BIN)/advaudit
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(BIN)/advaudit
	$(BIN)/python bench/demo_walltime.py

bench-memory: $(BIN)/advaudit
	$(BIN)/python bench/memmap_memory.py --gb 1.0

clean:
	rm -rf $(VENV) out build *.egg-info
