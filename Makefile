# The two commands of the README: `make run` and `make test`. Everything else is a helper.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
FRONTEND := portal/frontend
PYTHON ?= python3
# Two xdist workers on CI's two cores; the browser tests run in their own session afterwards.
PYTEST_WORKERS ?= 2

.PHONY: install install-test run test lint format typecheck bench translations check-translations clean

# constraints.txt pins the versions CI proved (regenerate: pip freeze --exclude-editable).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $@

# The suite's extras (pytest, Playwright, the SeaweedFS binary, ruff, mypy) only for `make test`.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -c constraints.txt -e '.[test,dev]'
	touch $@

$(FRONTEND)/node_modules/.installed: $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed $(FRONTEND)/node_modules/.installed

install-test: install $(VENV)/.installed-test

run: install
	$(BIN)/portal migrate
	PORTAL_DEMO=true $(BIN)/portal demo --if-empty
	PORTAL_DEMO=true $(BIN)/portal serve

test: install-test lint typecheck check-translations
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not e2e" -q
	$(PY) -m pytest -m e2e -q

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install-test
	$(BIN)/mypy portal worker

# Re-extract message ids from Python and templates and merge them into both catalogues.
translations: install-test
	mkdir -p var
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _ -k gettext -k ngettext:1,2 --no-location --sort-output -o var/messages.pot portal worker
	$(BIN)/pybabel update -i var/messages.pot -d $(FRONTEND)/translations --no-fuzzy-matching --ignore-obsolete

# CI fails on a message id that is missing or untranslated in zh_CN (tests/core/test_i18n.py does the work).
check-translations: install-test
	$(PY) -m pytest -q -p no:randomly tests/core/test_i18n.py

bench: install-test
	$(PY) bench/tenancy.py

clean:
	rm -rf $(VENV) var $(FRONTEND)/node_modules
