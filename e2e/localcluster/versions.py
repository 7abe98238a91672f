"""Pinned versions (e2e/versions.env) and where e2e/cluster/build.sh caches binaries."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = E2E_DIR.parent
VERSIONS_FILE = E2E_DIR / "versions.env"
BUILD_SCRIPT = E2E_DIR / "cluster" / "build.sh"


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse the KEY=VALUE lines of versions.env (comments and blanks ignored)."""
    versions: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        versions[key.strip()] = value.strip().strip("\"'")
    return versions


def cache_dir() -> Path:
    """The build cache, ${RUNG_CACHE:-~/.cache/rung}, as in build.sh."""
    return Path(os.environ.get("RUNG_CACHE") or Path.home() / ".cache" / "rung")


@dataclass(frozen=True)
class BinDirs:
    """The version-keyed bin directories that build.sh fills."""

    kubernetes: Path
    etcd: Path
    kwok: Path
    kserve: Path

    @classmethod
    def from_versions(cls, versions: dict[str, str] | None = None) -> BinDirs:
        v = versions if versions is not None else read_versions()
        bins = cache_dir() / "bin"
        return cls(
            kubernetes=bins / f"kubernetes-{v['KUBERNETES_VERSION']}",
            etcd=bins / f"etcd-{v['ETCD_VERSION']}",
            kwok=bins / f"kwok-{v['KWOK_VERSION']}",
            kserve=bins / f"kserve-{v['KSERVE_VERSION']}",
        )

    def binaries(self) -> dict[str, Path]:
        return {
            "etcd": self.etcd / "etcd",
            "kube-apiserver": self.kubernetes / "kube-apiserver",
            "kube-controller-manager": self.kubernetes / "kube-controller-manager",
            "kube-scheduler": self.kubernetes / "kube-scheduler",
            "kubectl": self.kubernetes / "kubectl",
            "kwok": self.kwok / "kwok",
            "kserve-controller": self.kserve / "manager",
            "llmisvc-controller": self.kserve / "llmisvc",
        }

    def missing(self, names: list[str] | None = None) -> list[Path]:
        """Binaries (of `names`, default all) that are not built yet."""
        wanted = self.binaries()
        paths = [wanted[n] for n in names] if names is not None else list(wanted.values())
        return [p for p in paths if not os.access(p, os.X_OK)]
