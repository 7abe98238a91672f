"""Stop and start components of the local cluster in the middle of a test.

`paused("kserve-controller")` freezes KServe's controller manager with SIGSTOP for the
length of a `with` block and resumes it with SIGCONT: its watches stall and nothing it
owns is reconciled, as when a controller is stuck or starved, while its process (and
its webhooks' listening socket) stays. The API server keeps serving.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from typing import Any

from localcluster import LocalCluster
from localcluster.process import read_pidfile, signal_group


def pidfile(component: str, cluster: LocalCluster | None = None) -> str:
    cluster = cluster or LocalCluster()
    return str(cluster.state_dir / "pids" / f"{component}.pid")


def pause(component: str, cluster: LocalCluster | None = None) -> int:
    """SIGSTOP the component's process group; returns its pid."""
    from pathlib import Path

    return signal_group(Path(pidfile(component, cluster)), signal.SIGSTOP)


def resume(component: str, cluster: LocalCluster | None = None) -> int:
    """SIGCONT the component's process group; returns its pid."""
    from pathlib import Path

    return signal_group(Path(pidfile(component, cluster)), signal.SIGCONT)


def is_stopped(pid: int) -> bool:
    """Whether the process is in the stopped state (T)."""
    from pathlib import Path

    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "T"


@contextlib.contextmanager
def paused(component: str, cluster: LocalCluster | None = None) -> Iterator[int]:
    """The component frozen for the block; resumed afterwards whatever happens."""
    pid = pause(component, cluster)
    deadline = time.monotonic() + 5
    while not is_stopped(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield pid
    finally:
        resume(component, cluster)


def component_pid(component: str, cluster: LocalCluster | None = None) -> int | None:
    from pathlib import Path

    return read_pidfile(Path(pidfile(component, cluster)))


KSERVE_WEBHOOKS = (
    ("mutating", "inferenceservice.serving.kserve.io"),
    ("validating", "inferenceservice.serving.kserve.io"),
)
"""KServe's InferenceService admission webhooks (served by the controller's process)."""
NEVER = {"matchLabels": {"testbed.rung.dev/kserve-webhooks": "skipped"}}


@contextlib.contextmanager
def kserve_controller_stopped(api: Any) -> Iterator[int]:
    """KServe's controller manager frozen (SIGSTOP), its InferenceService webhooks skipped.

    KServe serves its webhooks from the controller's process, so freezing it would also
    freeze every InferenceService write. In a cluster the controller can lag (a busy or
    starved leader) while webhook replicas keep answering; here the API server is told
    to skip the InferenceService webhooks for the block (their objectSelector matches
    nothing), so writes go through and nothing reconciles them. Both are restored on
    exit (each webhook's objectSelector as it was, by replace, not merge).
    """
    from kubernetes import client

    admission = client.AdmissionregistrationV1Api(api)
    saved: list[tuple[str, str, list[Any]]] = []

    def rewrite(kind: str, name: str, selectors: list[Any] | None) -> list[Any]:
        read = getattr(admission, f"read_{kind}_webhook_configuration")
        replace = getattr(admission, f"replace_{kind}_webhook_configuration")
        config = read(name)
        before = [hook.object_selector for hook in config.webhooks]
        for i, hook in enumerate(config.webhooks):
            hook.object_selector = (
                client.V1LabelSelector(match_labels=dict(NEVER["matchLabels"]))
                if selectors is None
                else selectors[i]
            )
        replace(name, config)
        return before

    pid = pause("kserve-controller")
    try:
        for kind, name in KSERVE_WEBHOOKS:
            saved.append((kind, name, rewrite(kind, name, None)))
        time.sleep(0.5)  # the API server's webhook configuration informer catches up
        yield pid
    finally:
        for kind, name, selectors in saved:
            rewrite(kind, name, selectors)
        resume("kserve-controller")


def restart(
    component: str, down_seconds: float = 0.0, cluster: LocalCluster | None = None
) -> float:
    """Stop a component (SIGTERM, as a node reboot or a rollout would) and start it again
    with the same command line after `down_seconds`; returns when it was started.

    The command line is read from /proc before stopping, so the component comes back
    exactly as `up` started it (same flags, ports, certificates, log and pid files).
    """
    from pathlib import Path

    from localcluster.process import Component, cmdline, stop_pidfile

    cluster = cluster or LocalCluster()
    pid_path = Path(pidfile(component, cluster))
    pid = read_pidfile(pid_path)
    if pid is None:
        raise RuntimeError(f"{component} is not running")
    argv = tuple(cmdline(pid))
    stop_pidfile(pid_path)
    time.sleep(down_seconds)
    log = cluster.state_dir / "logs" / f"{component}.log"
    Component(component, argv, log, pid_path).start()
    return time.monotonic()
