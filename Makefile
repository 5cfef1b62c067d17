# Two commands on a fresh clone (only Python 3.11+ and make needed):
#   make demo   the whole path on the embedded default: simulate → log → pipelines → DuckDB → KPIs
#   make test   install what the tests need, then lint, type-check and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "factflow needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --editable . --group dev
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/factflow demo

test: lint typecheck pytest

lint: $(INSTALLED)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(INSTALLED)
	$(BIN)/mypy

pytest: $(INSTALLED)
	$(BIN)/pytest -m "not (reliability and slow)" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(PRODUCT_VENV) factflow-demo .pytest_cache .mypy_cache .ruff_cache

# make bench   the benchmark suite of issue 4, apart from the tests: writes benchmarks/REPORT.md,
#              its plots and benchmarks/results.json (BENCH_ARGS=--full adds 10^7 events).
BENCH_INSTALLED := $(VENV)/.bench-installed

$(BENCH_INSTALLED): $(INSTALLED) benchmarks/requirements.txt
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	touch $(BENCH_INSTALLED)

# factflow's own commands are measured from an install that holds only what
# `pip install 'factflow[postgres,rabbitmq]'` brings, as a deployment has it: the venv above also
# holds the test tools, pandas and NumPy among them, which Arrow imports into every command.
PRODUCT_VENV := .venv-product
PRODUCT_INSTALLED := $(PRODUCT_VENV)/.installed

$(PRODUCT_INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(PRODUCT_VENV)
	$(PRODUCT_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(PRODUCT_VENV)/bin/python -m pip install --quiet --editable ".[postgres,rabbitmq]"
	touch $(PRODUCT_INSTALLED)

# The package's bytecode is compiled first, as installing a wheel does: an editable install has
# none, and where PYTHONDONTWRITEBYTECODE is set every command compiled factflow again (70 ms).
.PHONY: bench
bench: $(BENCH_INSTALLED) $(PRODUCT_INSTALLED)
	$(PRODUCT_VENV)/bin/python -m compileall -q src/factflow
	FACTFLOW_BENCH_PYTHON=$(CURDIR)/$(PRODUCT_VENV)/bin/python \
		$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# make reliability   the fault-injection suite of issue 8 (tests/reliability; several minutes,
#                    private PostgreSQL and RabbitMQ servers of its own for the outages): writes
#                    its table of scenarios into docs/reliability.md. `make test` runs its fast
#                    scenarios only (those not marked slow).
RELIABILITY_RESULTS := .pytest_cache/reliability-results.json

.PHONY: reliability
reliability: $(INSTALLED)
	rm -f $(RELIABILITY_RESULTS)
	FACTFLOW_RELIABILITY_RESULTS=$(RELIABILITY_RESULTS) $(BIN)/pytest -m reliability \
		tests/reliability $(PYTEST_ARGS); status=$$?; \
	$(BIN)/python -m tests.reliability.report $(RELIABILITY_RESULTS) --into docs/reliability.md \
		&& exit $$status
