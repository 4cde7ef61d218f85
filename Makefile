# The two commands a newcomer needs: `make demo` and `make test`. Only Python 3.11+ is required.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: demo test install lint format migrate clean-demo

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## Start the portal with a demo organisation: SQLite, file-system broker, web + worker + beat.
demo: $(STAMP)
	PORT=$(PORT) $(BIN)/python scripts/demo.py

## Run the test suite (SQLite by default; set DATABASE_URL for PostgreSQL).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean-demo:
	rm -rf var/

.PHONY: screenshots
## Rerun the browser journeys (live server, Celery worker, simulated devices); they rewrite docs/screenshots/journey-*.png.
screenshots: $(STAMP)
	$(BIN)/python -m pytest tests/browser/test_journey_it_admin.py tests/browser/test_journey_helpdesk.py tests/browser/test_journey_employee.py -q -p no:cacheprovider $(PYTEST_ARGS)

.PHONY: soak
## The soak: 10,000 simulated devices enrol and check in for 5 minutes against gunicorn on PostgreSQL (its own
## database, SOAK_DATABASE_URL, recreated each run); exits 1 on any error or when a process's memory grows.
soak: $(STAMP)
	$(BIN)/python bench/soak.py --fresh $(SOAK_ARGS)

.PHONY: fuzz
## The long API fuzzing run: 200 examples per operation and persona, with schemathesis's coverage phase.
fuzz: $(STAMP)
	FUZZ_PROFILE=long $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider $(PYTEST_ARGS)
