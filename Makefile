# Povtor: `make demo` shows the whole loop against local stand-ins, `make test` runs the whole suite.
# Both set up what is missing (system packages, virtual environment) themselves.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= data/demo
DEMO_CLIENTS ?= 40
APT_PACKAGES := postgresql sip-tester baresip-core espeak-ng sox libsox-fmt-all ffmpeg libjemalloc2 chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
# Two test processes: most tests wait on peers (SIP phones, the Bot API emulator, a worker
# process), so two keep two cores busy; longer tests are taken by whichever process is free.
PYTEST_ARGS ?= -n 2 --dist worksteal

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

DEMO_SECONDS ?=

# The worker against local stand-ins (Telegram emulator, SIP phones), time compressed; Ctrl-C
# stops it, or DEMO_SECONDS=N ends it by itself. The store stays in $(DEMO_DIR).
demo: system-deps venv
	$(BIN)/povtor demo --dir $(DEMO_DIR) --clients $(DEMO_CLIENTS) $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS))

clean:
	rm -rf $(VENV) data/demo .pytest_cache .mypy_cache .ruff_cache
