"""A real local Kubernetes control plane for tests and the demo.

    from localcluster import LocalCluster, ensure_cluster
    kubeconfig = LocalCluster().up()      # or ensure_cluster().kubeconfig
    ...
    LocalCluster().down()

Command line: ``python -m localcluster up|down|status|env``.
"""

from .cluster import (
    DEFAULT_STATE_DIR,
    NODE_NAME,
    ClusterError,
    LocalCluster,
    Ports,
    ensure_cluster,
)
from .versions import BinDirs, read_versions

__all__ = [
    "DEFAULT_STATE_DIR",
    "NODE_NAME",
    "BinDirs",
    "ClusterError",
    "LocalCluster",
    "Ports",
    "ensure_cluster",
    "read_versions",
]
