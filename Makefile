# Sentiment MLOps platform. `make` (or `make help`) lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
TOOLS_BIN := $(ROOT)/.tools/bin
export PATH := $(TOOLS_BIN):$(ROOT)/.venv/bin:$(PATH)
UV := $(TOOLS_BIN)/uv
PYTEST_ARGS ?=

##@ Basics

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Install the external binaries the tests need into .tools/bin (idempotent)
	@bash scripts/install-tools.sh

.PHONY: install
install: tools ## Create .venv with every workspace package and the dev tools (uv sync --locked)
	@$(UV) sync --locked --all-packages

.PHONY: lint
lint: install ## ruff check + ruff format --check
	@ruff check .
	@ruff format --check .

.PHONY: format
format: install ## Apply ruff fixes and formatting
	@ruff check --fix .
	@ruff format .

.PHONY: test
test: install ## THE test command: tools, uv sync, lint, then the whole test suite against real local servers
	@ruff check .
	@ruff format --check .
	@pytest $(PYTEST_ARGS)
