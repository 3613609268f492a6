# moltir: `make test` from a fresh clone installs everything it needs (venv, pinned node and
# openclaw releases under .cache/, gnome-keyring + dbus via apt when root) and runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.moltir-installed
# Marks every process this run starts (the harness passes it on), for the final leftover check.
RUN_ID := $(shell date +%s)-$(shell echo $$PPID)
BASETEMP := $(or $(TMPDIR),/tmp)/moltir-pytest-$(RUN_ID)
PYTEST_ARGS ?=
# Two pytest workers (the CI machine has 2 cores): the integration tests mostly wait on real
# gateways, systemd and podman, so two at a time roughly halve the wall time. A file's tests stay on
# one worker (--dist loadfile), in their order, sharing that file's fixtures. PYTEST_WORKERS=0: serial.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

.PHONY: venv deps lint test fuzz demo bench clean distclean

venv: $(STAMP)

# Reinstalled only when pyproject.toml changes (editable install: source edits need nothing).
$(STAMP): pyproject.toml
	@echo "== venv: installing moltir and its test tools ($$(date -u +%T) UTC)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

deps:
	@echo "== deps: node, npm, openclaw releases, keyring ($$(date -u +%T) UTC)"
	@scripts/ensure-deps.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict src bench

# Lint, types and tests all run (one report), then the target fails if any of them failed.
# pytest exit 5 ("no tests collected") is a failure here, never a silent success.
test: venv deps
	@rc=0; \
	echo "== ruff ($$(date -u +%T) UTC)"; $(VENV)/bin/ruff check . || rc=1; \
	echo "== mypy --strict src bench"; $(VENV)/bin/mypy --strict src bench || rc=1; \
	echo "== pytest tests/unit tests/integration ($$(date -u +%T) UTC)"; prc=0; \
	MOLTIR_TEST_RUN_ID=$(RUN_ID) $(PY) -m pytest tests/unit tests/integration \
	    --basetemp=$(BASETEMP) --durations=30 $(XDIST) $(PYTEST_ARGS) || prc=$$?; \
	if [ $$prc -eq 5 ]; then echo "make test: pytest collected no tests: failing" >&2; fi; \
	[ $$prc -eq 0 ] || rc=$$prc; \
	echo "== leftover processes ($$(date -u +%T) UTC)"; \
	$(PY) -m tests.harness.leftovers --run-id $(RUN_ID) --under $(BASETEMP) || { [ $$rc -ne 0 ] || rc=1; }; \
	if [ $$rc -eq 0 ]; then rm -rf $(BASETEMP); else echo "make test: FAILED (rc $$rc); test files kept in $(BASETEMP)" >&2; fi; \
	exit $$rc

# The JSON5 editor's property test with many more examples than the 2,000 of `make test`.
fuzz: venv
	MOLTIR_FUZZ_EXAMPLES=$${MOLTIR_FUZZ_EXAMPLES:-50000} $(PY) -m pytest -q -p no:cacheprovider \
	    tests/unit/test_json5edit.py -k property --hypothesis-show-statistics

demo: venv deps
	scripts/demo.sh

bench: venv
	@if [ -x bench/run.sh ]; then bench/run.sh; else echo "bench: no bench/run.sh yet"; fi

clean:
	rm -rf $(VENV) sandbox .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
	find . -name __pycache__ -type d -prune -not -path './.cache/*' -exec rm -rf {} +

# Also drops the pinned node/openclaw installs (~2 GB; `make deps` re-downloads them).
distclean: clean
	rm -rf .cache
