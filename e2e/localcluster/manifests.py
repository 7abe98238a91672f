"""Third-party manifests taken from pinned Go modules (`go mod download`).

Nothing here is committed to the repository: each module is fetched into the Go
module cache and its YAML read from there. The parsed documents are cached as
JSON under ${RUNG_CACHE}/manifests/ because the KServe CRDs are megabytes of
YAML.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .versions import cache_dir, read_versions

JSON = dict[str, Any]


@dataclass(frozen=True)
class ModuleFiles:
    """A selection of files inside one Go module."""

    module: str
    version_key: str  # the versions.env key holding the module's version
    directory: str
    include: tuple[str, ...] = ("*.yaml",)
    exclude: tuple[str, ...] = ("kustomization.yaml",)

    def version(self, versions: dict[str, str]) -> str:
        return versions[self.version_key]


#: The CRDs (and Gateway API's safe-upgrades ValidatingAdmissionPolicy) installed
#: at start-up.
CRD_SOURCES: tuple[ModuleFiles, ...] = (
    ModuleFiles("github.com/kserve/kserve", "KSERVE_VERSION", "config/crd/full"),
    ModuleFiles(
        "github.com/kserve/kserve", "KSERVE_VERSION", "config/crd/full/clusterstoragecontainer"
    ),
    # LLMInferenceService and LLMInferenceServiceConfig (serving.kserve.io/v1alpha2;
    # v1alpha1 served too), from KServe's minimal CRDs (the same schema without
    # descriptions: the full one, 2.2 MB, timed out in the apiserver on a loaded machine).
    # Their controller is KServe's `cmd/llmisvc` (localcluster/llmisvc.py).
    ModuleFiles(
        "github.com/kserve/kserve",
        "KSERVE_VERSION",
        "config/crd/minimal/llmisvc",
        include=(
            "serving.kserve.io_llminferenceservices.yaml",
            "serving.kserve.io_llminferenceserviceconfigs.yaml",
        ),
    ),
    # The Gateway API Inference Extension's CRDs (InferencePool v1 and v1alpha2,
    # InferenceObjective, InferenceModelRewrite) as KServe's llmisvc release ships them.
    ModuleFiles(
        "github.com/kserve/kserve",
        "KSERVE_VERSION",
        "config/llmisvc",
        include=("gateway-inference-extension.yaml",),
    ),
    ModuleFiles("sigs.k8s.io/gateway-api", "GATEWAY_API_VERSION", "config/crd/standard"),
    ModuleFiles(
        "github.com/prometheus-operator/prometheus-operator",
        "PROMETHEUS_OPERATOR_VERSION",
        "example/prometheus-operator-crd",
        include=tuple(
            f"monitoring.coreos.com_{name}.yaml"
            for name in ("podmonitors", "servicemonitors", "prometheusrules", "probes")
        ),
    ),
)

#: kwok's default stages (what `kwokctl` configures): nodes become Ready and
#: renew a Lease, pods become Ready, Job pods complete, deleted pods go away.
KWOK_STAGES = ModuleFiles(
    "sigs.k8s.io/kwok",
    "KWOK_VERSION",
    "kustomize/stage",
    include=(
        "node/fast/node-initialize.yaml",
        "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "pod/fast/pod-ready.yaml",
        "pod/fast/pod-complete.yaml",
        "pod/fast/pod-delete.yaml",
    ),
)


class ModuleError(RuntimeError):
    pass


def _go() -> str:
    found = shutil.which("go")
    if found is None and Path("/usr/local/go/bin/go").exists():
        found = "/usr/local/go/bin/go"
    if found is None:
        raise ModuleError("the `go` command is needed to fetch pinned modules and was not found")
    return found


def module_dir(module: str, version: str) -> Path:
    """`go mod download -json MODULE@VERSION` and return the module's Dir."""
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    with tempfile.TemporaryDirectory(prefix="rung-gomod-") as cwd:
        proc = subprocess.run(
            [_go(), "mod", "download", "-json", f"{module}@{version}"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    try:
        info: JSON = json.loads(proc.stdout)
    except json.JSONDecodeError:
        info = {}
    if proc.returncode != 0 or "Dir" not in info:
        detail = info.get("Error") or proc.stderr.strip() or proc.stdout.strip()
        raise ModuleError(f"go mod download {module}@{version} failed: {detail}")
    return Path(info["Dir"])


def select_files(root: Path, files: ModuleFiles) -> list[Path]:
    base = root / files.directory
    found: set[Path] = set()
    for pattern in files.include:
        found.update(p for p in base.glob(pattern) if p.is_file())
    selected = sorted(p for p in found if p.name not in files.exclude)
    if not selected:
        raise ModuleError(f"no files matching {files.include} under {base}")
    return selected


def load_documents(sources: tuple[ModuleFiles, ...] = CRD_SOURCES) -> list[JSON]:
    """Every YAML document of `sources`, parsed (cached as JSON by content key)."""
    versions = read_versions()
    key_src = json.dumps(
        [(s.module, s.version(versions), s.directory, s.include, s.exclude) for s in sources]
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    cached = cache_dir() / "manifests" / f"{key}.json"
    if cached.is_file():
        docs: list[JSON] = json.loads(cached.read_text())
        return docs

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = []
    for source in sources:
        root = module_dir(source.module, source.version(versions))
        for path in select_files(root, source):
            with path.open() as fh:
                docs.extend(d for d in yaml.load_all(fh, Loader=loader) if d)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(docs))
    tmp.replace(cached)
    return docs


def kwok_stages_yaml() -> str:
    """kwok's default Stage documents as one multi-document YAML string."""
    versions = read_versions()
    root = module_dir(KWOK_STAGES.module, KWOK_STAGES.version(versions))
    parts = [p.read_text().strip() for p in select_files(root, KWOK_STAGES)]
    return "\n---\n".join(parts) + "\n"
