"""Kubeconfig files with embedded credentials."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from .pki import CertPair


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_cert: Path,
    user: str,
    client: CertPair | None = None,
    token: str | None = None,
    cluster: str = "rung",
) -> Path:
    """Write a single-context kubeconfig for `user` at `server`, who authenticates with
    a client certificate or a bearer token (e.g. a ServiceAccount's)."""
    if client is not None and token is None:
        credentials = {
            "client-certificate-data": _b64(client.cert),
            "client-key-data": _b64(client.key),
        }
    elif token is not None and client is None:
        credentials = {"token": token}
    else:
        raise ValueError("give exactly one of client and token")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
