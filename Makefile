# govflow: `make run` and `make test` set everything up on a machine with Python >= 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format clean conformance

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "govflow needs Python >= 3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/govflow init
	$(BIN)/govflow deploy processes/ forms/
	$(BIN)/govflow demo-seed
	$(BIN)/govflow serve

# Two workers (pytest-xdist) for the tests that can share the machine, then the `serial` ones
# alone: they restart PostgreSQL, share the broker or drive a browser.
test: install lint
	$(BIN)/python -m pytest -n 2 -m "not serial"
	$(BIN)/python -m pytest -m serial

conformance: install
	$(BIN)/python -m conformance.miwg
	$(BIN)/python -m conformance.executable --quiet
	$(BIN)/python -m conformance.coverage

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
