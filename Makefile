# The two commands: `make demo` and `make test`. Both create .venv and install everything first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install peers lint typecheck unit bench clean

$(STAMP): requirements.txt requirements-dev.txt media_worker/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# System peers some tests use (baresip, podman); installed when root with apt, otherwise those tests skip.
peers:
	scripts/install-system-peers.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install peers
	$(BIN)/python -m pytest

test: lint typecheck unit

demo: install
	$(BIN)/python -m emulator demo

bench: install
	$(BIN)/python benchmarks/control_plane.py
	$(BIN)/python benchmarks/protocol.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
