"""`make demo`: Rung's level-0 flow on the local control plane (or $KUBECONFIG).

Brings the cluster up when none is named, installs the CRD, starts the operator,
applies examples/level-0.yaml and shows `kubectl get md` reaching Ready: the real
KServe controller (running in the local control plane) creates the predictor
Deployment and makes the InferenceService Ready; kwok runs its pod. Ctrl-C (or
--once, after Ready) tears everything down, at any point, also when the output went
through a pipe that Ctrl-C closed first (`make demo | tee demo.log`), and on SIGTERM or
SIGHUP (a closed terminal).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
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
    """Print a step; once stdout is gone (the `| tee` died with Ctrl-C), go on silently."""
    try:
        print(f"\033[1m==> {text}\033[0m", flush=True)
    except (BrokenPipeError, OSError):
        _silence()


def _silence() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # children (kubectl) inherit it too


def kubectl(*args: str, check: bool = True) -> None:
    subprocess.run(["kubectl", *args], check=check)


def _interrupt(signum: int, _frame: object) -> None:
    """SIGINT, SIGTERM or SIGHUP: tear down and leave (as Ctrl-C does)."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="exit after Ready (for tests)")
    args = parser.parse_args()
    os.environ["PATH"] = f"{BinDirs.from_versions().kubernetes}:{os.environ['PATH']}"
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    cluster: LocalCluster | None = None
    try:
        if os.environ.get("KUBECONFIG"):
            say(f"using the cluster in KUBECONFIG={os.environ['KUBECONFIG']}")
            kubeconfig = os.environ["KUBECONFIG"]
        else:
            say("starting the local control plane (make cluster-up)")
            cluster = LocalCluster()
            kubeconfig = str(cluster.up())
            os.environ["KUBECONFIG"] = kubeconfig
        _show(kubeconfig, once=args.once)
    except KeyboardInterrupt as interrupted:
        say(f"{interrupted.args[0] if interrupted.args else 'SIGINT'}: tearing down")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not stop the teardown
        if cluster is not None and cluster.started_here:
            say("stopping the local control plane")
            cluster.down()
    return 0


def _show(kubeconfig: str, once: bool) -> None:
    """The demo proper; the example is deleted again however it ends."""
    api = config.new_client_from_config(config_file=kubeconfig)
    state = ROOT / ".cluster"
    state.mkdir(exist_ok=True)
    say("installing the ModelDeployment CRD (crds/)")
    install_crds(api)
    say("starting the operator: rung run (log in .cluster/demo-operator.log)")
    with run_operator(kubeconfig, state / "demo-operator.log", "-n", "default"):
        try:
            say(f"kubectl apply -n default -f {EXAMPLE.relative_to(ROOT)}")
            kubectl("apply", "-n", "default", "-f", str(EXAMPLE))
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
            if not once:
                say("running; Ctrl-C tears everything down")
                while True:
                    signal.pause()  # until a signal raises KeyboardInterrupt
        finally:
            kubectl("delete", "-n", "default", "-f", str(EXAMPLE), "--wait=true", check=False)


if __name__ == "__main__":
    sys.exit(main())
