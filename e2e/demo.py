"""`make demo`: Rung's level-0 flow on the local control plane (or $KUBECONFIG).

Brings the cluster up when none is named, installs the CRD, starts the operator,
applies examples/level-0.yaml and shows `kubectl get md` reaching Ready: the real
KServe controller (running in the local control plane) creates the predictor
Deployment and makes the InferenceService Ready; kwok runs its pod. Ctrl-C (or
--once, after Ready) tears everything down.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "e2e"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from integration_kit import (  # noqa: E402
    get_isvc,
    install_crds,
    run_operator,
    wait_until,
)
from kubernetes import config  # noqa: E402

from localcluster import BinDirs, LocalCluster  # noqa: E402

EXAMPLE = ROOT / "examples" / "level-0.yaml"


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def kubectl(*args: str) -> None:
    subprocess.run(["kubectl", *args], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="exit after Ready (for tests)")
    args = parser.parse_args()
    os.environ["PATH"] = f"{BinDirs.from_versions().kubernetes}:{os.environ['PATH']}"
    cluster: LocalCluster | None = None
    if os.environ.get("KUBECONFIG"):
        say(f"using the cluster in KUBECONFIG={os.environ['KUBECONFIG']}")
        kubeconfig = os.environ["KUBECONFIG"]
    else:
        say("starting the local control plane (make cluster-up)")
        cluster = LocalCluster()
        kubeconfig = str(cluster.up())
        os.environ["KUBECONFIG"] = kubeconfig
    api = config.new_client_from_config(config_file=kubeconfig)
    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    state = ROOT / ".cluster"
    state.mkdir(exist_ok=True)
    try:
        say("installing the ModelDeployment CRD (crds/)")
        install_crds(api)
        say("starting the operator: rung run (log in .cluster/demo-operator.log)")
        with run_operator(kubeconfig, state / "demo-operator.log", "-n", "default"):
            say(f"kubectl apply -f {EXAMPLE.relative_to(ROOT)}")
            kubectl("apply", "-f", str(EXAMPLE))
            wait_until(lambda: get_isvc(api, "default", "iris"), "the InferenceService")
            kubectl("get", "inferenceservice", "iris", "-n", "default")
            kubectl("get", "md", "iris", "-n", "default")
            say("the KServe controller reconciles it: predictor Deployment, Service, readiness")
            kubectl("wait", "isvc/iris", "-n", "default", "--for=condition=Ready", "--timeout=60s")
            kubectl(
                "get",
                "deployment,pods",
                "-n",
                "default",
                "-l",
                "serving.kserve.io/inferenceservice=iris",
            )
            kubectl("get", "inferenceservice", "iris", "-n", "default")
            kubectl("wait", "md/iris", "-n", "default", "--for=condition=Ready", "--timeout=60s")
            kubectl("get", "md", "-n", "default", "-o", "wide")
            kubectl("describe", "md", "iris", "-n", "default")
            if not args.once:
                say("running; Ctrl-C tears everything down")
                while not stop["now"]:
                    time.sleep(0.5)
            kubectl("delete", "-f", str(EXAMPLE), "--wait=true")
    finally:
        if cluster is not None and cluster.started_here:
            say("stopping the local control plane")
            cluster.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
