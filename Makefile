# The two commands that matter: `make run` and `make test`. Both set up what is missing first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBS := clickhouse-server clickhouse-client chromium
PYTEST_ARGS ?=

.PHONY: setup system-packages run test test-unit lint lock bench soak stack-up stack-down clean k8s-tools k8s-check

setup: system-packages $(STAMP)

# Debian packages the stack and the tests need; installed only when missing ('apt-get update' once first).
system-packages:
	@missing=""; for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "✗ $(PYTHON) not found: install Python 3.11"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/ioc run

test: setup k8s-tools
	$(BIN)/pytest $(PYTEST_ARGS)

# Pure unit tests only: no broker, no ClickHouse.
test-unit: setup
	$(BIN)/pytest -m "not kafka and not clickhouse" $(PYTEST_ARGS)

# pip-audit: every locked dependency against PyPI's advisories (its JSON API). Not --strict: a package PyPI
# does not serve a version page for is listed as skipped, not failed (in some sandboxes that is all of them).
# Ignores go here as `--ignore-vuln ID` with the reason in a comment.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@mkdir -p .ioc; $(BIN)/pip-audit -r requirements.lock --no-deps --disable-pip --progress-spinner off \
	  -f json -o .ioc/pip-audit.json 2>/dev/null; rc=$$?; \
	  $(BIN)/python scripts/audit_summary.py .ioc/pip-audit.json && exit $$rc

# requirements.lock: the exact versions of the venv (runtime and dev), which `make lint` audits. Run after
# changing dependencies; tests/unit/test_lock.py fails while a pyproject dependency is missing from it.
lock: setup
	$(BIN)/pip freeze --exclude-editable | grep -v '^ioc==' > requirements.lock

bench: setup
	$(BIN)/ioc bench all

# deploy/k8s checks: kubectl (kustomize) and node/npm from Debian when missing, the Strimzi CR schemas from
# npm (pinned in deploy/k8s/tools), checkov in its own venv (it pins packaging<24, which pytest 9 refuses).
POLICY_VENV := .venv-policy
k8s-tools: setup
	@missing=""; command -v kubectl >/dev/null || missing="$$missing kubernetes-client"; \
	command -v node >/dev/null || missing="$$missing nodejs"; command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@test -x $(POLICY_VENV)/bin/checkov || { $(PYTHON) -m venv $(POLICY_VENV) && \
	  $(POLICY_VENV)/bin/pip install -q "$$($(BIN)/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["policy"][0])')"; }
	@test -d deploy/k8s/tools/node_modules/@kubernetes-models/strimzi-kafka-operator || \
	  (cd deploy/k8s/tools && npm ci --no-audit --no-fund --loglevel=error)

# Every overlay renders, every object validates offline, the policy scan passes (also run by `make test`).
k8s-check: k8s-tools
	$(BIN)/ioc k8s check

# An hour of the whole system at 2x the simulated load: lag, memory, errors over time in bench/soak/ (soak.png,
# soak.md, soak.json), the archive invariant and `ioc reconcile`; then the long fault suite. Fails if either fails.
SOAK_ARGS ?=
soak: setup
	@rc=0; $(BIN)/python -m bench.soak $(SOAK_ARGS) || rc=$$?; \
	if [ -d tests/faults ]; then IOC_FAULTS_LONG=1 $(BIN)/pytest tests/faults || rc=$$?; \
	else echo "tests/faults not present: long fault suite skipped"; fi; \
	exit $$rc

stack-up: setup
	$(BIN)/ioc stack up

stack-down:
	-$(BIN)/ioc stack down

clean: stack-down
	rm -rf .ioc
