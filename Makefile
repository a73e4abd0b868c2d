# fnud: `make run` and `make test` install what is missing, then do their job.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUM    := $(shell cksum < pyproject.toml | cut -d' ' -f1)
RUN_STAMP  := $(VENV)/.run-$(SUM)
TEST_STAMP := $(VENV)/.test-$(SUM)
CONFIG ?= config/fnud.toml

.PHONY: run test test-assets unit lint bench soak dist deps nginx wrk sshd browser fleet-deps clean

# only what serving the example needs: nginx and a virtualenv with fnud and uWSGI
run: nginx $(RUN_STAMP)
	$(BIN)/fnud -c $(CONFIG) start --foreground

# mypy for the oldest Python pyproject.toml declares and for the newest we run on
MYPY_VERSIONS := 3.10 3.11

# everything: lint, the unit tests, the real stack, the browser, the fleet; TEST_JOBS
# test files at a time (each file's tests in one process: module fixtures, the fleet);
# the 30 slowest tests are listed at the end of every run
TEST_JOBS ?= 2
test: lint nginx wrk browser fleet-deps test-assets
	$(BIN)/pytest -n $(TEST_JOBS) --dist loadfile --durations=30

# what tests share but do not test (wheels for Debian's python3, uWSGI compiled for it):
# built here, once per run and cached, so no test's time budget pays for it
test-assets: $(TEST_STAMP)
	$(BIN)/python -m testkit.assets

# the tests that start no process: seconds, fit for a loop
unit: $(TEST_STAMP)
	$(BIN)/pytest -q tests/unit

lint: $(TEST_STAMP)
	$(BIN)/ruff check supervisor tests testkit bench
	@for v in $(MYPY_VERSIONS); do \
		echo "mypy --strict --python-version $$v supervisor"; \
		$(BIN)/mypy --strict --python-version $$v supervisor || exit 1; \
	done
	$(BIN)/mypy --strict bench testkit

bench: nginx wrk $(TEST_STAMP)
	$(BIN)/python bench/run.py

# the chaos soak: SOAK_SECONDS (600) of it, SEED=N replays a run (default: a random seed)
SOAK_SECONDS ?= 600
soak: nginx wrk $(TEST_STAMP)
	$(BIN)/python -m testkit.soak --seconds $(SOAK_SECONDS) $(if $(SEED),--seed $(SEED))

# a wheel and an sdist in dist/, for `pip install` on a server (no checkout there)
dist: $(TEST_STAMP)
	rm -rf dist build
	$(BIN)/python -m build --no-isolation --outdir dist .

deps: nginx $(RUN_STAMP)

nginx:
	@./scripts/apt-install nginx nginx-light

wrk:
	@./scripts/apt-install wrk wrk

# tests/stack/test_browser.py drives Debian's chromium through chromedriver (selenium)
browser:
	@./scripts/apt-install chromium chromium
	@./scripts/apt-install chromedriver chromium-driver

# the fleet test bed (deploy/testbed/fleet) runs one sshd per network namespace
fleet-deps sshd:
	@./scripts/apt-install sshd openssh-server

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[uwsgi]'
	@touch $@

$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[uwsgi,gunicorn,test,deploy]'
	@touch $@ $(RUN_STAMP)

clean:
	rm -rf $(VENV) run run-nginx log test-artifacts dist build *.egg-info
