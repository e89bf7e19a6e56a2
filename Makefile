# v2v: `make demo` and `make test` set everything up on a fresh machine; a second run reuses the venv.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.v2v-installed
export V2V_HOME ?= $(CURDIR)/.v2v
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
UI_HOST ?= 127.0.0.1
UI_PORT ?= 3000

.PHONY: install demo test ui bench bench-burst clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/v2v demo -n 4

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

ui: $(STAMP)
	$(BIN)/v2v instance >/dev/null
	DAGSTER_HOME=$(V2V_HOME)/dagster_home exec $(BIN)/dagster dev -w workspace.yaml -h $(UI_HOST) -p $(UI_PORT)

bench: $(STAMP)
	$(BIN)/python bench/chroma_vector.py

clean:
	rm -rf $(V2V_HOME) .pytest_cache

bench-burst: $(STAMP)
	$(BIN)/python bench/burst.py
