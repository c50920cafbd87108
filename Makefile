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
test: install ## THE test command: lint, the test suite on real local servers, then compose and Kubernetes for real
	@ruff check .
	@ruff format --check .
	@pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory compose-e2e cluster-e2e PYTEST_ARGS=

.PHONY: test-fast
test-fast: install ## The inner loop: lint + the pure in-process tests (no server processes, no training on the full data)
	@ruff check .
	@ruff format --check .
	@pytest -m "not servers and not slow" -q $(PYTEST_ARGS)

.PHONY: test-alerts
test-alerts: tools ## promtool check + unit tests of observability/alerts (promtool built into .tools/bin)
	@promtool check rules observability/alerts/sentiment.rules.yaml
	@promtool test rules observability/tests/sentiment.rules.test.yaml

.PHONY: prometheus
prometheus: ## Optional: build upstream Prometheus 3.x from source into .tools/bin instead of Debian's package (>17 min cold)
	@WITH_PROMETHEUS=go bash scripts/install-tools.sh

.PHONY: test-scrape
test-scrape: install ## Only the scrape test (also in make test): a real Prometheus scrapes the real servers, every panel answers
	@pytest tests/observability/test_prometheus_scrape.py -p no:cacheprovider -q

##@ Run it on this machine (no Docker, no cluster)

DEMO_ARGS ?=

.PHONY: demo
demo: install ## The whole lifecycle locally: MLflow, Prefect, a training run, the API (DATA_SOURCE=file offline)
	@sentiment-demo up $(DEMO_ARGS)

.PHONY: demo-down
demo-down: ## Stop what `make demo` started (state stays in .local/)
	@sentiment-demo down

##@ Laptop (docker compose)

# `docker compose` (the Docker plugin) when present, else the standalone binary `make install` puts in .venv.
COMPOSE ?= $(if $(shell docker compose version >/dev/null 2>&1 && echo yes),docker compose,$(ROOT)/.venv/bin/docker-compose)
COMPOSE_DOWN_ARGS ?=
# Lineage tag of the images compose builds (the Dockerfiles' GIT_COMMIT build arg).
export GIT_COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

.PHONY: compose-up
compose-up: ## Check .env, ports and the engine, then build the images and start the platform (waits until healthy)
	@COMPOSE="$(COMPOSE)" sh compose/preflight.sh .env
	$(COMPOSE) up --detach --build --wait --wait-timeout 900
	@echo "MLflow http://localhost:5001  Prefect http://localhost:4200  MinIO http://localhost:9001  API http://localhost:8000/docs  Prometheus http://localhost:9090"

.PHONY: compose-down
compose-down: ## Stop the platform (keeps the volumes; COMPOSE_DOWN_ARGS=-v also deletes them)
	$(COMPOSE) down $(COMPOSE_DOWN_ARGS)

.PHONY: compose-train
compose-train: ## Run the sentiment-training/local deployment on the trainer's worker and wait for it (promotes a winner)
	$(COMPOSE) exec trainer prefect deployment run sentiment-training/local --watch

.PHONY: compose-check
compose-check: ## Validate docker-compose.yml with .env.example (docker compose config -q; no engine needed)
	$(COMPOSE) --env-file .env.example config -q

##@ Test harness (a private Docker engine on this machine; test tooling, see harness/README.md)

ENGINE := bash harness/container-engine/engine.sh

.PHONY: engine-up
engine-up: ## Start the harness's own dockerd (socket /run/sentiment-engine/docker.sock; eval "$$(harness/container-engine/engine.sh env)")
	@$(ENGINE) up

.PHONY: engine-down
engine-down: ## Stop it and remove its processes, bridges, mounts and iptables rules (keeps the image cache)
	@$(ENGINE) down

.PHONY: stand-ins
stand-ins: ## Build the stand-in base images (python, uv, postgres, minio, prometheus) into the harness engine (cached)
	@eval "$$($(ENGINE) env)" && bash harness/stand-in-images/build.sh

.PHONY: compose-e2e
compose-e2e: install ## The laptop lifecycle for real: engine, stand-ins, make compose-up, train, promote, down/up (tests/compose_e2e)
	@bash tests/compose_e2e/run.sh $(PYTEST_ARGS)

##@ Kubernetes (kind + Helm)

# Logic lives in scripts/charts/ (kind-loop.sh, k8s_train.py, k8s_smoke.py); k8s-dev/README.md walks through it.
KIND_LOOP := bash scripts/charts/kind-loop.sh

.PHONY: kind-up
kind-up: ## Create the kind cluster `sentiment` (k8s-dev/kind-config.yaml) and the `mlops` namespace (idempotent)
	@$(KIND_LOOP) up

.PHONY: images
images: ## docker build sentiment-trainer, -inference and -mlflow from services/*/Dockerfile, tagged with the git sha
	@$(KIND_LOOP) images

.PHONY: kind-load
kind-load: ## Load the images into the kind node (docker save | kind load image-archive)
	@$(KIND_LOOP) load

.PHONY: deploy
deploy: ## helm upgrade --install sentiment charts/sentiment-platform -n mlops --wait with k8s-dev/values-kind.yaml
	@$(KIND_LOOP) deploy

.PHONY: port-forward
port-forward: ## Forward MLflow :5001, Prefect UI :4200, MinIO console :9001, inference :8000, Prometheus :9090 (Ctrl-C stops)
	@$(KIND_LOOP) port-forward

.PHONY: train
train: ## Run the sentiment-training/k8s deployment as a Kubernetes Job and follow its logs (PARAMS="C=4 ...")
	@python scripts/charts/k8s_train.py $(foreach p,$(PARAMS),--param $(p))

.PHONY: smoke
smoke: ## Wait for a champion in the inference service, then POST /predict through the API server
	@python scripts/charts/k8s_smoke.py

.PHONY: kind-down
kind-down: ## Delete the kind cluster `sentiment`
	@$(KIND_LOOP) down

.PHONY: upload-data
upload-data: ## Offline clusters: copy DATA=<file> into the dataset PVC (deploy with training.data.prepare.mode=upload)
	@$(KIND_LOOP) upload-data "$(DATA)"

.PHONY: charts-check
charts-check: install ## helm lint, kubeconform (k8s 1.31 + 1.34, offline), helm-unittest and manifest checks
	@pytest tests/charts -q

##@ Local cluster (test harness)

# One node of upstream Kubernetes built from source, for machines where kind cannot pull its node
# image: harness/local-cluster/README.md. Then `export KUBECONFIG=...` (printed) and the targets above.
LOCAL_CLUSTER := bash harness/local-cluster/cluster.sh
CLUSTER_DOWN_ARGS ?=

# While the local cluster runs, make's Kubernetes targets (deploy, train, smoke, upload-data, port-forward) use it:
# its kubeconfig and the values overlay that says where its images come from.
LOCAL_CLUSTER_ENV := .tools/cluster/make.env
-include $(LOCAL_CLUSTER_ENV)

.PHONY: cluster-up
cluster-up: ## Build what is missing (cached in .tools/), start the local cluster, point make deploy/train/smoke at it
	@$(LOCAL_CLUSTER) up
	@printf 'export KUBECONFIG := %s\nexport DEPLOY_VALUES := %s\n' "$$($(LOCAL_CLUSTER) kubeconfig)" \
		"$(ROOT)/harness/local-cluster/values-local-cluster.yaml" >$(LOCAL_CLUSTER_ENV)

.PHONY: cluster-load
cluster-load: ## Load the project images (current tag) and the postgres/minio/prometheus stand-ins into the local cluster's node
	@$(LOCAL_CLUSTER) load-images $(foreach i,trainer inference mlflow,sentiment-$(i):$$(bash scripts/charts/kind-loop.sh tag)) \
		postgres:17.6-bookworm quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z quay.io/prometheus/prometheus:v3.5.0

.PHONY: cluster-e2e
cluster-e2e: install ## The Kubernetes path for real: images, local cluster, make deploy/train/smoke, faults, uninstall
	@bash tests/cluster_e2e/run.sh $(PYTEST_ARGS)

.PHONY: cluster-down
cluster-down: ## Stop the local cluster, remove all it made (CLUSTER_DOWN_ARGS=--keep-state keeps etcd + volumes)
	@rm -f $(LOCAL_CLUSTER_ENV)
	@$(LOCAL_CLUSTER) down $(CLUSTER_DOWN_ARGS)
