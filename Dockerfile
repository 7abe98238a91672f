# syntax=docker/dockerfile:1
# The Rung operator image:
#   docker build -t rung:0.1.0 .
#   docker run --rm rung:0.1.0 crd | head        # any `rung` subcommand
# The Helm chart (charts/rung) runs it as `rung run ...` with a read-only root filesystem.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the package and its dependencies in a virtual environment ------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/rung
WORKDIR /src
# README.md is optional (the glob lets the build pass before it exists).
COPY pyproject.toml README.m[d] ./
COPY operator ./operator
# pip compiles the installed modules to bytecode here, so nothing is written at run time.
RUN /opt/rung/bin/pip install . \
 && /opt/rung/bin/rung --help >/dev/null

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
