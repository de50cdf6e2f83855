# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out/demo

.PHONY: demo test bench clean
$(BIN)/advaudit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the CPU wheel of torch first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

demo: $(BIN)/advaudit
	$(BIN)/advaudit demo --out $(OUT); code=$$?; echo "open $(OUT)/report.html"; \
	  [ $$code -le 1 ] || exit $$code

test: $(BIN)/advaudit
	$(BIN)/python -m pytest -q

bench: $(BIN)/advaudit
	$(BIN)/python bench/demo_walltime.py

clean:
	rm -rf $(VENV) out build *.egg-info
