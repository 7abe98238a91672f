"""python -m localcluster up|down|status|env"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .cluster import ClusterError, LocalCluster, install_crds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster", description="The local Kubernetes control plane."
    )
    parser.add_argument(
        "command",
        choices=["up", "down", "status", "env", "install-crds"],
        help="up: start or reuse; down: stop and remove state; "
        "status: report (exit 1 when not running); env: print shell exports; "
        "install-crds: apply the pinned CRDs to the cluster of --kubeconfig (e.g. kind)",
    )
    parser.add_argument(
        "--state-dir", help="state directory (default: .cluster, or $RUNG_CLUSTER_DIR)"
    )
    parser.add_argument(
        "--no-crds", action="store_true", help="up: skip the KServe/Gateway/Prometheus CRDs"
    )
    parser.add_argument(
        "--no-kserve",
        action="store_true",
        help="up: don't run KServe's controllers (also RUNG_CLUSTER_KSERVE=0)",
    )
    parser.add_argument("--kubeconfig", help="install-crds: the target cluster's kubeconfig")
    args = parser.parse_args(argv)
    cluster = LocalCluster(
        args.state_dir, install_crds=not args.no_crds, kserve=False if args.no_kserve else None
    )
    try:
        if args.command == "up":
            cluster.up()
            print(cluster.env())
        elif args.command == "down":
            started = time.monotonic()
            cluster.down()
            print(f"cluster down in {time.monotonic() - started:.1f}s", file=sys.stderr)
        elif args.command == "status":
            status = cluster.status()
            print(json.dumps(status, indent=2))
            return 0 if status["running"] else 1
        elif args.command == "install-crds":
            target = args.kubeconfig or os.environ.get("KUBECONFIG")
            if not target:
                parser.error("install-crds needs --kubeconfig or $KUBECONFIG")
            names = install_crds(target)
            print(f"{len(names)} CRDs established", file=sys.stderr)
        else:
            print(cluster.env())
    except ClusterError as err:
        print(f"localcluster {args.command} failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
