# fnud: `make run` and `make test` install what is missing, then do their job.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
CONFIG ?= config/fnud.toml

.PHONY: run test lint unit bench deps nginx clean

run: deps
	$(BIN)/fnud -c $(CONFIG) start --foreground

# mypy for the oldest Python pyproject.toml declares and for the newest we run on
MYPY_VERSIONS := 3.10 3.11

test: lint
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

deps: nginx $(STAMP)

nginx:
	@./scripts/apt-install nginx nginx-light

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

clean:
	rm -rf $(VENV) run log *.egg-info
