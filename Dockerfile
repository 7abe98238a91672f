# syntax=docker/dockerfile:1
# The Rung operator image. `make image` builds it with buildah into build/rung-<version>.oci.tar,
# on a base made from Debian packages (e2e/image/build.sh); with Docker and a registry:
#   docker build -t rung:0.1.0 .
#   docker run --rm rung:0.1.0 crd | head        # any `rung` subcommand
# The Helm chart (charts/rung) runs it as `rung run ...` with a read-only root filesystem.
#
# PYTHON_IMAGE: any image with python3 >= 3.11 (and its venv module), groupadd and useradd:
# python:3.11-slim from a registry, or the Debian base that `make image` builds locally.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the package and its dependencies in a virtual environment ------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/rung
WORKDIR /src
# Behind a TLS-inspecting proxy, pass its CA bundle as the build secret `ca-bundle`
# (`make image` passes the host's); it is mounted for the pip steps only, never stored in a layer.
# The dependencies first, in a layer of their own (installed through a stub package), so that
# a change to operator/ or README.md alone reuses it.
COPY pyproject.toml ./
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && mkdir -p operator/rung && touch operator/rung/__init__.py README.md \
 && /opt/rung/bin/pip install -q . \
 && /opt/rung/bin/pip uninstall -q -y rung \
 && rm -rf operator build README.md
# README.md is optional (the glob lets the build pass before it exists).
COPY pyproject.toml README.m[d] ./
COPY operator ./operator
# pip compiles the installed modules to bytecode here, so nothing is written at run time;
# pip itself is not needed at run time.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && /opt/rung/bin/pip install -q --no-deps . \
 && /opt/rung/bin/rung --version \
 && /opt/rung/bin/python -m pip uninstall -q -y pip

# --- final: the interpreter, the virtual environment, nothing else ------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="rung" \
      org.opencontainers.image.description="Kubernetes operator that deploys ML models on KServe up an MLOps maturity ladder" \
      org.opencontainers.image.licenses="Apache-2.0"
# USER: kopf names itself after the user (getpass) unless POD_ID is set, and getpass fails
# for a uid without a passwd entry, as under OpenShift's arbitrary uids.
ENV PATH=/opt/rung/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    USER=nonroot
# The distroless "nonroot" uid/gid; the chart's securityContext uses the same.
RUN groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=builder /opt/rung /opt/rung
USER 65532:65532
# 8080: kopf's liveness endpoint (--liveness); 9090: /metrics (--metrics-port).
EXPOSE 8080 9090
ENTRYPOINT ["rung"]
CMD ["run"]
