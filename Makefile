# User-facing targets; each sets itself up on a fresh machine.
#   make demo       set-up + a 5-site DP federated run on bundled breast-cancer data
#   make test       set-up + the suite but the tests marked slow, under 15 minutes on 2 cores
#   make test-slow  set-up + the tests marked slow (CI runs both: .ci/run)
#   make docs       regenerate the reference pages and build the docs site into site/

PYTHON ?= python3
VENV ?= .venv
# On a machine without torch, pin the CPU build that lies on local disk; otherwise
# pip resolves a multi-GB CUDA build. Override: make demo TORCH_SPEC='torch==2.9.1'.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.fedlife-installed
# Every run gets its own Flower home and Ray temp dir, never a shared one.
ISOLATED = FLWR_HOME=$$(mktemp -d) RAY_TMPDIR=$$(mktemp -d /tmp/ray-XXXXXX) \
	FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 FLWR_TELEMETRY_ENABLED=0
# Two workers, one test module each at a time (a module's fixtures stay on one worker).
# Every test has its own Flower home, Ray temp dir and ports; WORKERS=0 runs serially.
WORKERS ?= 2
PYTEST_ARGS ?= --durations=25
PYTEST = $(ISOLATED) $(BIN)/python -m pytest $(PYTEST_ARGS)

.PHONY: demo test test-slow docs chromium

demo: $(STAMP)
	$(ISOLATED) $(BIN)/fedlife-sim run

# mypy (one core, 35 s of CPU on a fresh clone) runs beside the tests, its verdict
# printed after them.
test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $$(mktemp -d)
	@types=$$(mktemp); $(BIN)/mypy > $$types 2>&1 & typing=$$!; \
	$(PYTEST) -n $(WORKERS) --dist loadscope -m "not slow"; tested=$$?; \
	wait $$typing; typed=$$?; \
	echo "=== mypy, run beside the tests (exit $$typed) ==="; cat $$types; rm -f $$types; \
	test $$tested = 0 && test $$typed = 0

# The slow tier runs its deployment tests after the rest, not beside them: every test
# here is heavy, and a third heavy process made Ray's fixed 30 s node start and
# Flower's 15 s SuperLink start time out (clean clones 24, 25 and 27).
test-slow: $(STAMP) chromium
	$(PYTEST) -n $(WORKERS) --dist loadscope -m "slow and not deploy"
	$(PYTEST) -m "slow and deploy"

docs: $(STAMP)
	$(BIN)/python scripts/gen_docs.py
	$(BIN)/python -m common.wire.table docs/privacy/threat-model.md
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The report test renders report.html in Debian's headless chromium.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@test -x /usr/bin/chromium || $(SUDO) apt-get install -y chromium \
		|| { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

# --no-compile: Python compiles (and caches) each module the first time it is imported,
# a fraction of the installed files; compiling them all took 40 s of a 104 s set-up.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q --no-compile "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q --no-compile -e ".[dev]"
	touch $(STAMP)
