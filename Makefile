# Povtor: `make demo` runs the main job on embedded defaults, `make test` runs the whole suite.
# Both set up what is missing (system packages, virtual environment) themselves.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= data/demo
DEMO_CLIENTS ?= 2000
APT_PACKAGES := postgresql sip-tester baresip-core espeak-ng sox libsox-fmt-all ffmpeg chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck system-deps venv clean

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

$(STAMP): pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy povtor app

test: system-deps venv lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

DEMO_ENV := POVTOR_DATA_DIR=$(DEMO_DIR)
DEMO_SECONDS ?= 30

demo: system-deps venv
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(DEMO_ENV) $(BIN)/povtor db upgrade
	$(DEMO_ENV) $(BIN)/povtor demo-data --clients $(DEMO_CLIENTS) --seed 1
	echo demo-password | $(DEMO_ENV) $(BIN)/povtor user add demo --role admin --password-stdin
	@echo "--- who would be contacted today (first 15 of them) ---"
	@$(DEMO_ENV) $(BIN)/povtor plan --dry-run 2>/dev/null | head -n 15 || true
	@echo "--- the worker for $(DEMO_SECONDS) s: dashboard http://127.0.0.1:8080 (demo / demo-password)"
	@echo "--- health and metrics http://127.0.0.1:9108/healthz /metrics"
	$(DEMO_ENV) $(BIN)/povtor run --duration $(DEMO_SECONDS)
	$(DEMO_ENV) $(BIN)/povtor report

clean:
	rm -rf $(VENV) data/demo .pytest_cache .mypy_cache .ruff_cache
