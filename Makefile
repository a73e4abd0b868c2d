# fnud: `make run` and `make test` install what is missing, then do their job.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
CONFIG ?= config/fnud.toml

.PHONY: run test lint unit bench deps nginx sshd browser clean

run: deps
	$(BIN)/fnud -c $(CONFIG) start --foreground

# mypy for the oldest Python pyproject.toml declares and for the newest we run on
MYPY_VERSIONS := 3.10 3.11

test: lint browser
	$(BIN)/pytest

lint: deps
	$(BIN)/ruff check supervisor tests bench
	@for v in $(MYPY_VERSIONS); do \
		echo "mypy --strict --python-version $$v supervisor"; \
		$(BIN)/mypy --strict --python-version $$v supervisor || exit 1; \
	done

bench: deps
	@command -v wrk >/dev/null 2>&1 || ./scripts/apt-install wrk wrk
	$(BIN)/python bench/run.py

deps: nginx sshd $(STAMP)

nginx:
	@./scripts/apt-install nginx nginx-light

# tests/test_browser.py drives Debian's chromium through chromedriver (selenium from PyPI)
browser:
	@./scripts/apt-install chromium chromium
	@./scripts/apt-install chromedriver chromium-driver

# the fleet test bed (deploy/testbed/fleet) runs one sshd per network namespace
sshd:
	@./scripts/apt-install sshd openssh-server

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,deploy]'
	@rm -f $(VENV)/.installed-* && touch $@

clean:
	rm -rf $(VENV) run log test-artifacts *.egg-info
