# Povtor: `make demo` runs the main job on embedded defaults, `make test` runs the whole suite.
# Both set up what is missing (system packages, virtual environment) themselves.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= data/demo
DEMO_CLIENTS ?= 2000
APT_PACKAGES := sip-tester baresip-core espeak-ng sox libsox-fmt-all ffmpeg chromium chromium-driver
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
	$(BIN)/mypy povtor

test: system-deps venv lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

demo: system-deps venv
	mkdir -p $(DEMO_DIR)
	POVTOR_DATA_DIR=$(DEMO_DIR) $(BIN)/povtor db upgrade
	POVTOR_DATA_DIR=$(DEMO_DIR) $(BIN)/povtor demo-data --clients $(DEMO_CLIENTS) --seed 1
	POVTOR_DATA_DIR=$(DEMO_DIR) $(BIN)/povtor plan --dry-run | head -n 20
	POVTOR_DATA_DIR=$(DEMO_DIR) $(BIN)/povtor run --duration 20
	POVTOR_DATA_DIR=$(DEMO_DIR) $(BIN)/povtor report

clean:
	rm -rf $(VENV) data/demo .pytest_cache .mypy_cache .ruff_cache
