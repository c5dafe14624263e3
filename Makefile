# Every workflow of the monorepo. `make demo` and `make test` work on a fresh machine:
# they create .venv, install torch (CPU build, pinned in configs/constraints.txt) first, then
# every member editable in one pip run.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip --disable-pip-version-check
CONSTRAINTS := configs/constraints.txt
PACKAGES := resontinex-trust fusion-ops t1-deploy cert-runtime cert-trajectory cert-coordination hbt-core
PKG ?=
SELECTED := $(or $(PKG),$(PACKAGES))
# The isolation check re-runs each package's suite in a clean venv; slow tests already ran once
# in `test-packages`, so by default it skips them (`make iso ISO_PYTEST_ARGS=` runs everything).
# PostgreSQL tests need the repo root's conftest.py fixture, which an isolated package copy
# does not have: they run in `test-packages` and `test-integration` only.
ISO_PYTEST_ARGS ?= -m "not slow and not postgres"
ISO_JOBS ?= 2
STAMP := $(VENV)/.installed
# Extras installed per member in the dev venv: tests and benchmark peers, plus the optional
# back ends whose tests skip when they are absent (8-bit loading, numba, Ray, transformers).
DEFAULT_EXTRAS := test,bench
EXTRAS_cert-trajectory := test,bench,bitsandbytes
EXTRAS_hbt-core := test,bench,numba,transformers,ray,postgres
PROMTOOL := /usr/bin/promtool
WRK := /usr/bin/wrk
# Debian's PostgreSQL server (initdb, pg_ctl) for the tests marked `postgres`; the newest installed
# major version, or a path that does not exist yet so that the rule below installs it.
PG_CTL := $(or $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin/pg_ctl))),/usr/lib/postgresql/missing/bin/pg_ctl)
QUICK ?=
DIST ?= dist

.PHONY: help install demo test lint test-packages test-tools test-integration iso bench bench-smoke mutate build clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24"

$(STAMP): $(PY) pyproject.toml $(wildcard packages/*/pyproject.toml) $(CONSTRAINTS) configs/requirements-dev.txt
	$(PIP) install --quiet -c $(CONSTRAINTS) torch
	$(PIP) install --quiet -c $(CONSTRAINTS) -r configs/requirements-dev.txt \
		$(foreach p,$(PACKAGES),-e "packages/$(p)[$(or $(EXTRAS_$(p)),$(DEFAULT_EXTRAS))]") -e ".[all,test]"
	touch $@

install: $(STAMP) ## create .venv with every member editable (torch first)

demo: $(STAMP) ## run the offline demo of every member; artifacts in demo-output/
	$(BIN)/resontinex demo --out demo-output

TEST_STAGES := install lint test-packages test-tools test-integration bench-smoke iso

test: ## what CI runs: install, lint, each package's tests, tool tests, integration, benchmark smoke, isolation
	@failed=(); times=(); \
	for stage in $(TEST_STAGES); do \
		start=$$(date +%s); \
		$(MAKE) --no-print-directory $$stage || failed+=("$$stage"); \
		times+=("$$stage $$(( $$(date +%s) - start ))s"); \
		if [[ $$stage == install && $${#failed[@]} -gt 0 ]]; then break; fi; \
	done; \
	echo; echo "stage times: $${times[*]}"; \
	if (( $${#failed[@]} )); then echo "failed stages: $${failed[*]}"; fi; \
	echo "stages: $$(( $${#times[@]} - $${#failed[@]} )) passed, $${#failed[@]} failed"; \
	(( $${#failed[@]} == 0 ))

lint: $(STAMP) $(PROMTOOL) ## ruff, formatting, mypy, umbrella extras, workflows, alert rules, docs site
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src $(foreach p,$(PACKAGES),packages/$(p)/src) tools
	$(PY) tools/check_umbrella.py
	$(BIN)/actionlint .github/workflows/*.yml
	$(PROMTOOL) check rules configs/prometheus/alerts.yml
	$(PROMTOOL) test rules configs/prometheus/alerts_test.yml
	$(BIN)/mkdocs build --strict --site-dir .site

# promtool (Debian's `prometheus` package) checks and unit-tests the alert rules.
$(PROMTOOL):
	@command -v apt-get >/dev/null || { echo "promtool missing: install Prometheus' promtool"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# The server binaries of Debian's `postgresql` package (not a running service: the tests' fixture
# starts a throw-away cluster of its own).
$(PG_CTL):
	@command -v apt-get >/dev/null || { echo "pg_ctl missing: install the PostgreSQL server"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null

test-packages: $(STAMP) $(PG_CTL) ## one pytest process per package (PKG=... for one)
	@failed=(); for p in $(SELECTED); do \
		echo "== $$p =="; start=$$(date +%s); \
		$(BIN)/pytest -q packages/$$p/tests || failed+=("$$p"); \
		echo "($$p: $$(( $$(date +%s) - start )) s)"; \
	done; \
	if (( $${#failed[@]} )); then echo "tests failed in: $${failed[*]}"; exit 1; fi

test-tools: $(STAMP) ## tests of the repo tooling itself
	$(BIN)/pytest -q tools/tests

test-integration: $(STAMP) $(PG_CTL) ## cross-package flows against the installed packages
	$(BIN)/pytest -q tests-integration

iso: $(STAMP) ## each package built as a wheel, installed alone in a fresh venv, tested there (PKG=...)
	$(PY) tools/check_isolation.py --jobs $(ISO_JOBS) --pytest-args '$(ISO_PYTEST_ARGS)' $(PKG)

# wrk (Debian's package) is the load generator of benchmarks/bench_service.py.
$(WRK):
	@command -v apt-get >/dev/null || { echo "wrk missing: install wrk"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null

bench: $(STAMP) $(WRK) ## run benchmarks (PKG=..., QUICK=1) and collect them into docs/benchmarks.md
	$(PY) tools/run_benchmarks.py $(if $(QUICK),--quick) $(PKG)

bench-smoke: $(STAMP) $(WRK) ## every benchmark in quick mode: it must run; timings are not judged
	$(PY) tools/run_benchmarks.py --quick --no-write $(PKG)

# Mutation testing is slow (minutes per module) and so not a `make test` stage.
MODULE ?=
MUTATE_ARGS ?=
mutate: $(STAMP) ## mutmut on core modules, one at a time; kill-rate table (PKG=..., MODULE=...)
	$(PY) tools/mutate.py $(PKG) $(foreach m,$(MODULE),--module $(m)) $(MUTATE_ARGS)

build: $(STAMP) ## wheel + sdist into dist/ and twine check: every distribution, or one (PKG=fusion-ops, PKG=resontinex)
	rm -rf $(DIST)
	for p in $(or $(PKG),$(PACKAGES) resontinex); do \
		if [[ $$p == resontinex ]]; then dir=.; else dir=packages/$$p; fi; \
		[[ -f $$dir/pyproject.toml ]] || { echo "unknown distribution: $$p"; exit 2; }; \
		$(PY) -m build --no-isolation --outdir $(DIST) $$dir; \
	done
	$(BIN)/twine check --strict $(DIST)/*

clean: ## remove venvs, build output and caches
	rm -rf $(VENV) .iso dist build demo-output site .site .bench .cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
