# Course book: build the site, run the notebooks and the tests.
# `make help` lists the targets.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SPHINXOPTS ?= -W --keep-going
BUILDDIR := _build
NOTEBOOKS ?= $(wildcard notebooks/*.ipynb)
# make test runs the suite in two processes (a notebook never splits: tests/plugins/distribution.py)
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help deps html serve test lint notebooks sync lab bench mutation clean lock checkpoint linkcheck airflow

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (PYTHON=$(PYTHON))")'
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { echo "$(PYTHON) cannot create virtual environments: install the venv module (Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps record which pinned set is installed; they are redone when it changes.
$(VENV)/.site: requirements/site.txt _ext/pyproject.toml $(wildcard _ext/*.py) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/site.txt -e _ext
	@touch $@

# The book's own Python packages, installed editable: the fil rouge, its Spark job and
# the course kit (process runner, tool policy) that notebooks and tests import.
PACKAGES := examples/resilia examples/kubernetes examples/spark examples/observabilite tools/coursekit

$(VENV)/.dev: requirements/dev.txt $(PACKAGES:%=%/pyproject.toml) _ext/pyproject.toml $(wildcard _ext/*.py) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt $(PACKAGES:%=-e %) -e _ext
	@touch $@ $(VENV)/.site

# Tools that pin libraries the book's stack disagrees with live in a venv of their own,
# made from their own lock: .venv-checkov from requirements/checkov.txt, and so on.
.venv-%/.done: requirements/%.txt
	test -x .venv-$*/bin/python || $(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet -r $<
	@touch $@

html: $(VENV)/.site ## Build the site into _build/html (stored outputs, nothing executed)
	$(BIN)/sphinx-build -b html $(SPHINXOPTS) . $(BUILDDIR)/html
	@echo "Site: $(BUILDDIR)/html/index.html"

linkcheck: $(VENV)/.site ## Check the external links (needs internet; weekly workflow links.yml)
	$(BIN)/sphinx-build -b linkcheck $(SPHINXOPTS) . $(BUILDDIR)/linkcheck

serve: $(VENV)/.site ## Live preview on http://127.0.0.1:8000 (rebuilds on save)
	$(BIN)/sphinx-autobuild -b html $(SPHINXOPTS) --host 127.0.0.1 --port 8000 \
		--watch _ext --watch examples . $(BUILDDIR)/html

lint: $(VENV)/.dev ## ruff on the code, the tests and the notebooks
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# axe-core (accessibility rules) from npm, pinned by tests/axe/package-lock.json; the
# browser tests inject it into Debian's Chromium.
AXE := tests/axe/node_modules/axe-core/axe.min.js
# Without npm the browser tests skip and say why (they fail in CI, which installs it).
$(AXE): tests/axe/package.json tests/axe/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tests/axe --no-audit --no-fund --loglevel=error && touch $@; \
	else \
	  echo "npm not found: no axe-core, the browser tests will be skipped (apt-get install npm)"; \
	fi

# The security chapter's OpenID Connect provider (oidc-provider), pinned by its lock file.
OIDC := examples/securite/oidc/node_modules/.stamp
$(OIDC): examples/securite/oidc/package.json examples/securite/oidc/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix examples/securite/oidc --no-audit --no-fund --loglevel=error && touch $@; \
	else \
	  echo "npm not found: no OpenID Connect provider, the security notebook stops at its first cell (apt-get install npm)"; \
	fi

# Airflow in its own venv (its pins disagree with the dev stack): the generic rule
# above installs the lock, this one adds resilia, which the DAG's tasks call.
.venv-airflow/.stamp: .venv-airflow/.done examples/resilia/pyproject.toml
	.venv-airflow/bin/python -m pip install --quiet --no-deps -e examples/resilia
	@touch $@

airflow: .venv-airflow/.stamp ## Build .venv-airflow (Airflow 3 + resilia), used by the Airflow chapter

deps: $(VENV)/.dev $(AXE) $(OIDC) .venv-checkov/.done .venv-airflow/.stamp ## Install everything make test needs (venvs, npm packages; make -j4 deps builds them side by side)

test: deps ## Lint, build the site, then run the whole suite (package, notebooks, site, CI files)
	$(MAKE) lint
	$(MAKE) html
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

sync: $(VENV)/.dev ## Sync each notebook with its jupytext .md twin (the newer one wins)
	$(BIN)/jupytext --sync $(NOTEBOOKS)

notebooks: $(VENV)/.dev $(OIDC) .venv-airflow/.stamp ## Re-execute the notebooks and store their fresh outputs (NOTEBOOKS=... for some)
	$(BIN)/python tools/execute_notebooks.py $(NOTEBOOKS)
	$(BIN)/python -m coursekit.exercises $(NOTEBOOKS)

# Locks: one recipe, universal (every OS) from the oldest Python the book supports, then
# checked to resolve for each of the others, so no environment gets downgraded. Each
# lock lists its inputs (after -c, the lock it must agree with), in dependency order.
PYTHONS := 3.11 3.12 3.13
LOCKS := site dev kernel lab bench checkov airflow
site.lock := requirements/site.in
dev.lock := requirements/site.in requirements/kernel.in requirements/test.in -c requirements/site.txt
kernel.lock := requirements/kernel.in -c requirements/dev.txt
lab.lock := requirements/lab.in -c requirements/dev.txt
bench.lock := requirements/bench.in -c requirements/dev.txt
checkov.lock := requirements/checkov.in
airflow.lock := requirements/airflow.in
UV_COMPILE = $(BIN)/uv pip compile -q

lock: $(VENV)/.dev ## Re-pin requirements/*.txt from requirements/*.in (Python 3.11 to 3.13)
	$(BIN)/python -m pip install --quiet uv
	@set -e; $(foreach lock,$(LOCKS), \
	  echo "lock requirements/$(lock).txt"; \
	  $(UV_COMPILE) --universal --python-version $(firstword $(PYTHONS)) \
	    $($(lock).lock) -o requirements/$(lock).txt; \
	  $(foreach python,$(wordlist 2,$(words $(PYTHONS)),$(PYTHONS)), \
	    $(UV_COMPILE) --python-version $(python) requirements/$(lock).txt >/dev/null \
	    || { echo "requirements/$(lock).txt does not resolve for Python $(python)" >&2; \
	         exit 1; };))

checkpoint: $(VENV)/.dev ## Put examples/ back as at the start of a chapter (CHAPITRE=docker); your files are kept aside
	@test -n "$(CHAPITRE)" || { echo "usage: make checkpoint CHAPITRE=<chapitre>" >&2; exit 2; }
	$(BIN)/python -m coursekit.checkpoint "$(CHAPITRE)"

lab: $(VENV)/.dev ## Open JupyterLab on the notebooks
	$(BIN)/python -m pip install --quiet -r requirements/lab.txt
	$(BIN)/jupyter lab notebooks

bench: ## Load-test the API with and without instrumentation (locust, in .venv-bench; the method: chapter "Les tests")
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet -r requirements/bench.txt \
		-e tools/coursekit -e 'examples/resilia[api]' -e examples/observabilite
	.venv-bench/bin/python -m resilia_observabilite.bench $(BENCH_ARGS)

MUTATION_BUDGET ?= 1800
mutation: $(VENV)/.dev ## Mutation testing of resilia's data and request guards (mutmut, at most MUTATION_BUDGET s; not in make test)
	$(BIN)/python examples/tests/mutation.py --budget $(MUTATION_BUDGET) --json $(BUILDDIR)/mutation.json

clean: ## Remove the built site and caches (keeps .venv)
	rm -rf $(BUILDDIR) .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
