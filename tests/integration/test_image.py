"""The operator image, built by `make image` and run against the cluster.

`make image` builds the Dockerfile with buildah (no Docker engine, no registry) into
build/rung-<version>.oci.tar; `make test` builds it before pytest, and the `image_archive`
fixture runs `make image` again, a no-op when the archive is up to date. The image then runs
in two ways, each with a read-only root filesystem, a tmpfs on /tmp (as the chart mounts
it), the host's network and the image's own user (uid 65532), environment and entrypoint:

- `podman`: a container (runtime runc; crun refuses this machine's hybrid cgroup
  hierarchy, see docs/install.md). Skipped, with podman's own error as the reason, where
  the sandbox refuses containers altogether.
- `chroot`: the image's root filesystem unpacked with umoci and run under chroot in new
  mount and PID namespaces, with the user, environment and command line read from the
  image's OCI config: a container without cgroups, which runs wherever root does.

In both, `rung --version` prints the package version and `rung run` brings
examples/level-0.yaml to Ready, answering its liveness probe meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration_kit import ROOT, create_md, is_condition, wait_until, watch_md
from kubernetes import client

from testbed.modelserver import free_port

pytestmark = pytest.mark.usefixtures("rung_crds", "kserve_controller")

Argv = Callable[[Sequence[str], Path], list[str]]
"""The command line that runs `rung <args>` in the image, with the given kubeconfig."""


@dataclass(frozen=True)
class Runner:
    name: str
    argv: Argv


@pytest.fixture(scope="session")
def image_archive() -> Path:
    """build/rung-<version>.oci.tar, (re)built by `make image` when out of date."""
    made = subprocess.run(["make", "-s", "image"], cwd=ROOT, capture_output=True, text=True)
    if made.returncode != 0:
        pytest.fail(f"make image failed:\n{made.stdout}\n{made.stderr}", pytrace=False)
    archive = ROOT / "build" / f"rung-{version('rung')}.oci.tar"
    assert archive.is_file(), f"make image did not write {archive}"
    size = archive.stat().st_size / 1e6
    print(f"image archive {archive}: {size:.0f} MB")
    return archive


# --- podman -------------------------------------------------------------------------------


def _podman_limits() -> list[str]:
    """Rlimits within the sandbox's hard limits: podman's defaults for root (nofile 1048576,
    nproc 4194304) are above them, and raising a hard limit needs CAP_SYS_RESOURCE."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096"]


@pytest.fixture(scope="session")
def podman(image_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    """The image loaded into podman's storage, or a skip naming what refused to run it."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (make image-tools installs it)")
    pulled = subprocess.run(
        ["podman", "pull", "-q", f"oci-archive:{image_archive}"], capture_output=True, text=True
    )
    if pulled.returncode != 0:
        pytest.fail(f"podman could not load {image_archive}:\n{pulled.stderr}", pytrace=False)
    image = pulled.stdout.strip().splitlines()[-1]
    configs = tmp_path_factory.mktemp("podman")

    def argv(args: Sequence[str], kubeconfig: Path) -> list[str]:
        # The container's user (65532) reads a copy; the admin kubeconfig is private to root.
        readable = configs / f"{uuid.uuid4().hex[:8]}.kubeconfig"
        shutil.copyfile(kubeconfig, readable)
        readable.chmod(0o644)
        return [
            "podman",
            "--runtime",
            "runc",
            "run",
            "--rm",
            "--network=host",
            # The chart's securityContext: read-only root, no capabilities, no privilege
            # escalation, the runtime's default seccomp profile (podman's default).
            "--read-only",
            "--cap-drop=all",
            "--security-opt=no-new-privileges",
            "--tmpfs=/tmp:rw,size=64m,mode=1777",
            *_podman_limits(),
            f"--volume={readable}:/etc/rung/kubeconfig:ro",
            "--env=KUBECONFIG=/etc/rung/kubeconfig",
            image,
            *args,
        ]

    probe = subprocess.run(argv(["--version"], _empty_kubeconfig(configs)), capture_output=True)
    try:
        if probe.returncode != 0:
            pytest.skip(f"podman refused to run the image: {probe.stderr.decode().strip()}")
        yield Runner("podman", argv)
    finally:
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True)


def _empty_kubeconfig(directory: Path) -> Path:
    path = directory / "empty.kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    return path


# --- chroot -------------------------------------------------------------------------------

CHROOT_SCRIPT = r"""
set -eu
root=$1 kubeconfig=$2 user=$3; shift 3
# This mount namespace's view only: the root filesystem read-only, a tmpfs on /tmp, /proc.
mount --bind "$root" "$root"
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$root/tmp"
mount -t proc proc "$root/proc"
install -m 0400 -o "${user%:*}" -g "${user#*:}" "$kubeconfig" "$root/tmp/kubeconfig"
mount -o remount,bind,ro "$root"
exec chroot --userspec="$user" --groups="${user#*:}" "$root" "$@"
"""


def _image_config(layout: Path) -> dict[str, Any]:
    """The image's OCI config (Entrypoint, Cmd, Env, User) from an OCI layout."""

    def blob(digest: str) -> dict[str, Any]:
        algorithm, _, hex_ = digest.partition(":")
        loaded: dict[str, Any] = json.loads((layout / "blobs" / algorithm / hex_).read_text())
        return loaded

    index = json.loads((layout / "index.json").read_text())
    manifest = blob(index["manifests"][0]["digest"])
    config: dict[str, Any] = blob(manifest["config"]["digest"])["config"]
    return config


@pytest.fixture(scope="session")
def unpacked(image_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    """The image's root filesystem unpacked by umoci, run under chroot as the image's user."""
    work = tmp_path_factory.mktemp("image")
    layout = work / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-xf", str(image_archive), "-C", str(layout)], check=True)
    index = json.loads((layout / "index.json").read_text())
    ref = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    bundle = work / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{ref}", str(bundle)], check=True)
    rootfs = bundle / "rootfs"
    size = int(
        subprocess.run(["du", "-sm", rootfs], capture_output=True, text=True).stdout.split()[0]
    )
    print(f"image unpacked: {size} MB")
    config = _image_config(layout)
    user = config["User"]
    assert user == "65532:65532", f"the image runs as {user!r}, not the chart's 65532:65532"

    def argv(args: Sequence[str], kubeconfig: Path) -> list[str]:
        env = [*config["Env"], "KUBECONFIG=/tmp/kubeconfig"]
        command = [*config["Entrypoint"], *args]
        return [
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--",
            "sh",
            "-c",
            CHROOT_SCRIPT,
            "chroot-image",
            str(rootfs),
            str(kubeconfig),
            user,
            "/usr/bin/env",
            "-i",
            *env,
            *command,
        ]

    try:
        yield Runner("chroot", argv)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(params=["podman", "chroot"])
def runner(request: pytest.FixtureRequest) -> Runner:
    fixture = {"podman": "podman", "chroot": "unpacked"}[request.param]
    value: Runner = request.getfixturevalue(fixture)
    return value


# --- running the operator from the image --------------------------------------------------


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            # The whole process group: podman (which passes the signal on to the container),
            # or unshare and the operator under chroot.
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextlib.contextmanager
def operator_from_image(
    runner: Runner, kubeconfig: Path, log_path: Path, *args: str
) -> Iterator[Running]:
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            runner.argv(["run", *args], kubeconfig),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        running = Running(process, log_path)
        try:
            wait_until(
                lambda: process.poll() is not None or "starting rung" in running.log(),
                f"the operator starting from the image ({runner.name})",
                timeout=120,
            )
            if process.poll() is not None:
                raise AssertionError(f"the operator exited early:\n{running.log()[-4000:]}")
            yield running
        finally:
            running.stop()


@pytest.fixture
def image_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    """A namespace no other operator of this session watches, with its default
    ServiceAccount (KServe's predictor Pods need it)."""
    name = f"img-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        wait_until(
            lambda: (
                core.list_namespaced_service_account(
                    name, field_selector="metadata.name=default"
                ).items
            ),
            f"the default ServiceAccount in {name}",
        )
        yield name
    finally:
        core.delete_namespace(name)


# --- the tests ----------------------------------------------------------------------------


def test_version_inside_the_image(runner: Runner, tmp_path: Path) -> None:
    out = subprocess.run(
        runner.argv(["--version"], _empty_kubeconfig(tmp_path)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == f"rung {version('rung')}"


def test_the_image_runs_level_0_to_ready(
    runner: Runner,
    kube_api: client.ApiClient,
    kubeconfig: str,
    image_namespace: str,
    tmp_path: Path,
) -> None:
    health = free_port()
    log = tmp_path / f"operator-{runner.name}.log"
    examples = list(yaml.safe_load_all((ROOT / "examples" / "level-0.yaml").read_text()))
    with operator_from_image(
        runner,
        Path(kubeconfig),
        log,
        "--verbose",
        "-n",
        image_namespace,
        f"--liveness=http://127.0.0.1:{health}/healthz",
    ):
        started = time.monotonic()
        for body in examples:
            body["metadata"]["namespace"] = image_namespace
            create_md(kube_api, body)
        for body in examples:
            md = watch_md(
                kube_api,
                image_namespace,
                body["metadata"]["name"],
                lambda o: is_condition(o, "Ready", "True"),
                f"{body['metadata']['name']} Ready, reconciled by the operator in the image",
                timeout=120,
            )
            assert md["status"]["phase"] == "Ready"
        print(f"{runner.name}: level-0 Ready {time.monotonic() - started:.1f} s after apply")
        with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=5) as probe:
            assert probe.status == 200
    for body in examples:
        assert f"{image_namespace}/{body['metadata']['name']}" in log.read_text(errors="replace")
