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

.PHONY: install demo test test-postgres ui bench bench-burst bench-gpu clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/v2v demo -n 4

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The production instance end to end (tests/test_postgres.py): a real PostgreSQL from Debian's packages on
# loopback, configs/dagster-postgres.yaml and the daemon. The test must run, not skip.
test-postgres: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[postgres,dev]'
	@tmp=$$(mktemp -d) && chmod 755 "$$tmp" && trap 'scripts/start_postgres.sh --stop "$$tmp/pg"; rm -rf "$$tmp"' EXIT && \
	port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') && \
	url=$$(scripts/start_postgres.sh "$$tmp/pg" "$$port" | tail -1) && echo "test-postgres: server at $$url" && \
	V2V_PG_URL="$$url" $(BIN)/python -m pytest -q -m postgres -rs --junitxml="$$tmp/junit.xml" && \
	{ grep -q ' skipped="0"' "$$tmp/junit.xml" || { echo "test-postgres: the Postgres test skipped" >&2; exit 1; }; }

ui: $(STAMP)   # Ctrl-C or SIGTERM stops the webserver, the daemon and the code servers
	@exec $(BIN)/v2v ui --host $(UI_HOST) --port $(UI_PORT)

bench: $(STAMP)
	$(BIN)/python bench/chroma_vector.py

clean:
	rm -rf $(V2V_HOME) .pytest_cache

bench-burst: $(STAMP)
	$(BIN)/python bench/burst.py

bench-gpu: $(STAMP)   # full-size synthetic-weight models: needs a GPU with ~25 GB free (results: bench/RESULTS.md)
	$(BIN)/python bench/gpu_throughput.py
