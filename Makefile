# postdesk: make setup | make demo | make test   (see README.md)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export POSTDESK_DATA_DIR ?= $(CURDIR)/var

.PHONY: setup demo test lint lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "postdesk needs Python 3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

demo: setup
	$(BIN)/postdesk demo

test: setup
	sh scripts/test-deps.sh
	$(BIN)/python -m postdesk.testing.runall

lint: setup
	$(BIN)/ruff check postdesk bench
	$(BIN)/ruff format --check postdesk bench

# Regenerate requirements.lock after editing the dependencies in pyproject.toml (needs uv: pipx install uv).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache
