# Rung — developer entry points. The README names two: `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install test unit integration lint typecheck crds demo cluster-up cluster-down cluster-kind binaries clean prometheus chromium image image-tools

## install: create .venv with the operator and its test tools
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $@

## binaries: build (once, cached under ~/.cache/rung) the control-plane binaries
binaries:
	@bash e2e/cluster/build.sh

## helm: install helm $(HELM_VERSION) (e2e/versions.env) with `go install`, cached by version
HELM_VERSION := $(shell sed -n 's/^HELM_VERSION=//p' e2e/versions.env)
HELM_BIN := $(or $(RUNG_CACHE),$(HOME)/.cache/rung)/bin/helm-$(HELM_VERSION)
.PHONY: helm
helm:
	@test -x $(HELM_BIN)/helm || { mkdir -p $(HELM_BIN) && \
	  GOBIN=$(HELM_BIN) CGO_ENABLED=0 go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); }
	@echo "helm $$($(HELM_BIN)/helm version --short) at $(HELM_BIN)/helm"

## prometheus: install the prometheus server from Debian when missing
prometheus:
	@command -v prometheus >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@prometheus --version 2>&1 | head -1

## chromium: install Debian's Chromium when missing (the html report is rendered in it;
##           Playwright drives it and never downloads a browser of its own)
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@chromium --version 2>/dev/null | head -1

## image: the operator image from the Dockerfile, with buildah, into build/rung-<version>.oci.tar
##        (no Docker engine, no registry: the python base is made from Debian packages and
##        cached under ~/.cache/rung; PYTHON_IMAGE=<image> uses another). See docs/install.md.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml | head -1)
IMAGE_ARCHIVE := build/rung-$(VERSION).oci.tar
IMAGE_INPUTS := Dockerfile .dockerignore pyproject.toml README.md e2e/image/build.sh e2e/versions.env \
  $(shell find operator -type f -not -path '*/__pycache__/*' -not -path '*.egg-info/*')
image: $(IMAGE_ARCHIVE)
	@echo "image rung:$(VERSION) at $(IMAGE_ARCHIVE) ($$(($$(stat -c %s $(IMAGE_ARCHIVE)) / 1000000)) MB)"
$(IMAGE_ARCHIVE): $(IMAGE_INPUTS) | image-tools
	@bash e2e/image/build.sh

## image-tools: buildah, mmdebstrap, umoci, skopeo and podman (with runc) from Debian when missing
IMAGE_TOOLS := buildah mmdebstrap umoci skopeo podman runc
image-tools:
	@for tool in $(IMAGE_TOOLS); do command -v $$tool >/dev/null || missing=1; done; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $(IMAGE_TOOLS) >/dev/null; fi

## lint / typecheck: ruff, mypy strict and the import-linter layering contract
lint: install
	$(VENV)/bin/ruff check operator tests e2e
	$(VENV)/bin/ruff format --check operator tests e2e
	$(VENV)/bin/lint-imports
typecheck: install
	$(VENV)/bin/mypy

## crds: regenerate crds/ from the pydantic models
crds: install
	$(VENV)/bin/rung crd --output-dir crds
	$(VENV)/bin/rung crd --output-dir charts/rung/crds

## test: every test (lint, types, unit, integration on the local control plane)
test: install binaries prometheus chromium helm image lint typecheck
	$(VPY) -m pytest

unit: install
	$(VPY) -m pytest -m "not cluster"

## cluster-up / cluster-down: the local control plane (.cluster/kubeconfig); see docs/local-cluster.md
LOCALCLUSTER := PYTHONPATH=$(CURDIR)/e2e $(VPY) -m localcluster
cluster-up: install binaries
	@$(LOCALCLUSTER) up
cluster-down:
	@if [ -x $(VPY) ]; then $(LOCALCLUSTER) down; fi

## cluster-kind: a kind cluster for machines with Docker (KIND_IMAGE=kindest/node:... to pin)
KIND_IMAGE ?=
cluster-kind: install
	@mkdir -p .cluster
	@if kind get clusters 2>/dev/null | grep -qx rung; then \
	  kind export kubeconfig --name rung --kubeconfig .cluster/kubeconfig; \
	else \
	  kind create cluster --name rung --config e2e/kind.yaml --kubeconfig .cluster/kubeconfig \
	    $(if $(KIND_IMAGE),--image $(KIND_IMAGE)); \
	fi
	@$(LOCALCLUSTER) install-crds --kubeconfig .cluster/kubeconfig
	@echo "export KUBECONFIG=$(CURDIR)/.cluster/kubeconfig"

## bench: the scale benchmark, Flagger side by side (N=1000 and 5000; `make bench N=1000`
##        for one size, BENCH_ARGS for more flags); writes e2e/benchmarks/scale-report.md
##        and .json. Not part of `make test`. See e2e/benchmarks/README.md.
N ?=
BENCH_ARGS ?=
comma := ,
.PHONY: bench bench-reconcile flagger
bench: install binaries prometheus flagger
	$(VPY) e2e/benchmarks/bench.py $(foreach n,$(subst $(comma), ,$(N)),--count $(n)) $(BENCH_ARGS)

## flagger: build Flagger (e2e/versions.env), cached like the other binaries; for `make bench`
flagger:
	@bash e2e/cluster/build.sh flagger

## bench-reconcile: the first, small benchmark (writes e2e/benchmarks/reconcile-report.md)
bench-reconcile: install binaries
	$(VPY) e2e/benchmarks/bench_reconcile.py

## demo: the level-0 flow on the local control plane (Ctrl-C tears down)
demo: install binaries
	$(VPY) e2e/demo.py

clean: cluster-down
	rm -rf $(VENV) .cluster
