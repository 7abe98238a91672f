"""The local control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, a kwok controller simulating one node, KServe's controller
manager and KServe's LLMInferenceService controller, all on 127.0.0.1.

State (certificates, etcd data, logs, pid files, kubeconfigs) lives in one
directory, `.cluster/` at the repository root by default.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from . import kserve, llmisvc, manifests, pki
from .api import FIELD_MANAGER, APIClient, APIError, object_path
from .kubeconfig import write_kubeconfig
from .pki import CertPair, ClusterPKI
from .process import Component, read_pidfile, stop_pidfile, wait_reaped
from .versions import REPO_ROOT, BinDirs, read_versions

JSON = dict[str, Any]

DEFAULT_STATE_DIR = REPO_ROOT / ".cluster"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service's ClusterIP
POD_CIDR = "10.244.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
NODE_NAME = "kwok-node-0"

#: Start order; stopped in reverse.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kserve-controller",
    "llmisvc-controller",
)
#: KServe's controllers: started together when `kserve` is on.
KSERVE_COMPONENTS = ("kserve-controller", "llmisvc-controller")


class ClusterError(RuntimeError):
    """The cluster could not be brought up (or down); the message says why."""


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the control plane."""

    apiserver: int
    etcd_client: int
    etcd_peer: int
    controller_manager: int
    scheduler: int
    kserve_webhook: int
    kserve_metrics: int
    kserve_health: int
    llmisvc_webhook: int
    llmisvc_metrics: int
    llmisvc_health: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(
            base + 443, base + 379, base + 380, base + 257, base + 259,
            base + 600, base + 601, base + 602, base + 610, base + 611, base + 612,
        )  # fmt: skip

    @classmethod
    def default(cls) -> Ports:
        """Base port ${RUNG_CLUSTER_PORT_BASE:-36000}: apiserver on 36443, etcd 36379/36380,
        controller-manager 36257, scheduler 36259, KServe webhook/metrics/health
        36600/36601/36602, KServe's LLMInferenceService controller 36610/36611/36612."""
        return cls.from_base(int(os.environ.get("RUNG_CLUSTER_PORT_BASE", "36000")))

    @classmethod
    def free(cls, attempts: int = 50) -> Ports:
        """A random base whose ports are all free right now."""
        for _ in range(attempts):
            ports = cls.from_base(random.randrange(20000, 50000, 1000))
            if not ports.busy():
                return ports
        raise ClusterError("found no free block of loopback ports")

    def busy(self) -> list[int]:
        taken = []
        for port in asdict(self).values():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    taken.append(port)
        return taken


def _log(msg: str) -> None:
    print(f"[localcluster] {msg}", file=sys.stderr, flush=True)


class LocalCluster:
    """A local control plane whose state lives in `state_dir`.

    `up()` starts it (or reuses it when it is already running) and returns the
    admin kubeconfig path; `down()` stops every process and removes the state.
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        ports: Ports | None = None,
        bin_dirs: BinDirs | None = None,
        install_crds: bool = True,
        kserve: bool | None = None,
        extra_args: dict[str, list[str]] | None = None,
        log: Callable[[str], None] = _log,
    ) -> None:
        """`kserve`: run KServe's controller manager and its LLMInferenceService
        controller (default: on unless
        RUNG_CLUSTER_KSERVE=0; always off without the CRDs). A running cluster is
        reused as it is, unless `kserve=True` is asked of one started without it."""
        self.state_dir = Path(
            state_dir or os.environ.get("RUNG_CLUSTER_DIR") or DEFAULT_STATE_DIR
        ).absolute()
        self._requested_ports = ports
        self.bin_dirs = bin_dirs or BinDirs.from_versions()
        self.install_crds = install_crds
        self._kserve_insisted = bool(kserve) and install_crds
        if kserve is None:
            kserve = os.environ.get("RUNG_CLUSTER_KSERVE", "1") != "0"
        #: Whether up() starts KServe's controller (see running_components for a running one).
        self.kserve = kserve and install_crds
        self.extra_args = extra_args or {}
        self.log = log
        #: True once up() has started processes (rather than reusing a running cluster).
        self.started_here = False

    # ----------------------------------------------------------------- paths
    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def pki(self) -> ClusterPKI:
        return ClusterPKI(self.state_dir / "pki")

    @property
    def _info_file(self) -> Path:
        return self.state_dir / "cluster.json"

    def _pidfile(self, name: str) -> Path:
        return self.state_dir / "pids" / f"{name}.pid"

    def _logfile(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    @property
    def components(self) -> tuple[str, ...]:
        """The components up() starts, in start order."""
        return tuple(n for n in COMPONENTS if self.kserve or n not in KSERVE_COMPONENTS)

    def running_components(self) -> tuple[str, ...]:
        """The components the cluster in `state_dir` was started with (recorded in
        cluster.json; a record without them predates KServe's controller)."""
        try:
            info = json.loads(self._info_file.read_text())
        except (OSError, ValueError):
            return self.components
        recorded = info.get("components", [n for n in COMPONENTS if n not in KSERVE_COMPONENTS])
        return tuple(n for n in COMPONENTS if n in recorded)

    @property
    def _kserve_dir(self) -> Path:
        """The KServe manager's own directory: kubeconfig, and its TMPDIR holding
        k8s-webhook-server/serving-certs/tls.{crt,key}."""
        return self.state_dir / "kserve-controller"

    @property
    def _llmisvc_dir(self) -> Path:
        """The LLMInferenceService controller's directory, laid out like _kserve_dir."""
        return self.state_dir / "llmisvc-controller"

    @property
    def ports(self) -> Ports:
        """The ports of the running cluster if recorded, else the requested/default ones."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            recorded = json.loads(self._info_file.read_text())["ports"]
            # A record from before KServe's ports were added lacks them.
            return replace(Ports.from_base(recorded["apiserver"] - 443), **recorded)
        return self._requested_ports or Ports.default()

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    # ---------------------------------------------------------------- status
    def is_running(self) -> bool:
        """Every component's recorded process is alive and the apiserver is ready."""
        if not all(read_pidfile(self._pidfile(n)) for n in self.running_components()):
            return False
        if not self.kubeconfig.is_file():
            return False
        try:
            return self._client().readyz()
        except (OSError, ssl.SSLError):
            return False

    def status(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state_dir),
            "kubeconfig": str(self.kubeconfig),
            "server": self.server,
            "running": self.is_running(),
            "components": list(self.running_components()),
            "ports": asdict(self.ports),
            "processes": {n: read_pidfile(self._pidfile(n)) for n in COMPONENTS},
        }

    def env(self) -> str:
        """Shell `export` line for using this cluster with kubectl."""
        import shlex

        return (
            f"export KUBECONFIG={shlex.quote(str(self.kubeconfig))} "
            f"PATH={shlex.quote(str(self.bin_dirs.kubernetes))}:$PATH"
        )

    # ------------------------------------------------------------------- up
    def up(self, timeout: float = 300) -> Path:
        """Start the cluster, or reuse it if it is running; return the kubeconfig path."""
        started = time.monotonic()
        with self._lock():
            if self.is_running():
                running = self.running_components()
                if self._kserve_insisted and not set(KSERVE_COMPONENTS) <= set(running):
                    self.log("the running cluster lacks KServe's controllers: restarting it")
                else:
                    self.log(
                        f"reusing the running cluster in {self.state_dir} ({self.server}); "
                        f"checked in {time.monotonic() - started:.1f}s"
                    )
                    return self.kubeconfig
            self._stop_all()
            self._wipe_state()
            try:
                self._start(deadline=started + timeout)
            except BaseException:
                self._stop_all()  # nothing left running; logs stay for inspection
                raise
            self.started_here = True
        self.log(f"cluster up in {time.monotonic() - started:.1f}s: {self.server}")
        self.log(f"kubeconfig: {self.kubeconfig}")
        return self.kubeconfig

    def down(self, *, discard: bool = False) -> None:
        """Stop every process this state directory records, wait for them, remove the state.

        `discard`: a throw-away cluster (the benchmarks'): stop at once, without first
        deleting the KServe objects so that KServe removes its finalizers."""
        if not self.state_dir.exists():
            return
        with self._lock():
            self._stop_all(delete_kserve_objects=not discard)
            self._wipe_state()
            (self.state_dir / ".lock").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.state_dir.rmdir()
        self.started_here = False

    # -------------------------------------------------------------- internals
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _stop_all(self, *, delete_kserve_objects: bool = True) -> None:
        if delete_kserve_objects:
            self._delete_kserve_objects()
        errors = []
        stopped: list[int] = []
        for name in reversed(COMPONENTS):
            pidfile = self._pidfile(name)
            if read_pidfile(pidfile) is not None:
                self.log(f"stopping {name}")
            try:
                stopped += stop_pidfile(pidfile)
            except RuntimeError as err:
                errors.append(str(err))
        wait_reaped(stopped)  # so that not even a zombie is left behind
        if errors:
            raise ClusterError("; ".join(errors))

    def _delete_kserve_objects(self) -> None:
        """While KServe's controllers still run, delete what carries their finalizers."""
        cleanups = [
            cleanup
            for name, cleanup in (
                ("llmisvc-controller", llmisvc.delete_all),
                ("kserve-controller", kserve.delete_all),
            )
            if read_pidfile(self._pidfile(name)) is not None
        ]
        if not cleanups or read_pidfile(self._pidfile("kube-apiserver")) is None:
            return
        try:
            client = self._client()
            if client.readyz():
                for cleanup in cleanups:
                    cleanup(client, log=self.log)
        except (OSError, ssl.SSLError, APIError, ValueError) as err:
            self.log(f"could not delete the KServe objects before stopping KServe: {err}")

    def _wipe_state(self) -> None:
        """Remove everything in the state directory except the lock file."""
        if not self.state_dir.is_dir():
            return
        for entry in self.state_dir.iterdir():
            if entry.name == ".lock":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def _client(self, user: str = "admin") -> APIClient:
        p = self.pki
        return APIClient(self.server, str(p.ca.cert), p.client(user))

    def _component(self, name: str, args: list[str]) -> Component:
        binary = self.bin_dirs.binaries()[name]
        argv = (str(binary), *args, *self.extra_args.get(name, []))
        return Component(name, argv, self._logfile(name), self._pidfile(name))

    def _start(self, deadline: float) -> None:
        missing = self.bin_dirs.missing([*self.components, "kubectl"])
        if missing:
            raise ClusterError(
                "control-plane binaries are missing (build them with `make binaries`, "
                f"i.e. bash e2e/cluster/build.sh): {', '.join(map(str, missing))}"
            )
        ports = self._requested_ports or Ports.default()
        busy = ports.busy()
        if busy:
            raise ClusterError(
                f"loopback ports {busy} are already in use; set RUNG_CLUSTER_PORT_BASE "
                "to another base (ports are base+443, +379, +380, +257, +259, +600..602, "
                "+610..612)"
            )
        t0 = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._info_file.write_text(
            json.dumps(
                {
                    "ports": asdict(ports),
                    "components": list(self.components),
                    "versions": read_versions(),
                },
                indent=2,
            )
        )

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            # Fetch/parse third-party manifests while the control plane boots.
            crds = pool.submit(manifests.load_documents) if self.install_crds else None
            stages = pool.submit(manifests.kwok_stages_yaml)
            bundle = pool.submit(kserve.install_bundle) if self.kserve else None
            llm_bundle = pool.submit(llmisvc.install_bundle) if self.kserve else None

            p = pki.generate(self.state_dir / "pki", service_ip=SERVICE_IP)
            for user in pki.CLIENTS:
                write_kubeconfig(
                    self.kubeconfig if user == "admin" else self.state_dir / f"{user}.kubeconfig",
                    server=self.server,
                    ca_cert=p.ca.cert,
                    client=p.client(user),
                    user=user,
                )
            self.log(f"certificates and kubeconfigs written ({time.monotonic() - t0:.1f}s)")

            etcd = self._start_etcd(ports)
            self._wait(
                etcd,
                deadline,
                lambda: _http_ok(
                    f"http://127.0.0.1:{ports.etcd_client}/health", b'"health":"true"'
                ),
                [etcd],
            )
            self.log(f"etcd ready ({time.monotonic() - t0:.1f}s)")

            apiserver = self._start_apiserver(ports, p)
            client = self._client()
            self._wait(apiserver, deadline, client.readyz, [etcd, apiserver])
            self.log(f"kube-apiserver ready ({time.monotonic() - t0:.1f}s)")

            kwok_config = self.state_dir / "kwok.yaml"
            kwok_config.write_text(self._result("kwok stages", stages, deadline))
            kcm = self._start_controller_manager(ports, p)
            scheduler = self._start_scheduler(ports)
            kwok = self._start_kwok(kwok_config)
            everything = [etcd, apiserver, kcm, scheduler, kwok]

            client.apply(object_path(_NODE), _NODE)
            pending_crds: list[str] = []
            if crds is not None:
                docs: list[JSON] = self._result("CRD manifests", crds, deadline)
                if self.kserve:
                    docs = llmisvc.with_conversion(
                        docs, ports.llmisvc_webhook, p.ca.cert.read_bytes()
                    )
                pending_crds = self._apply_all(client, docs)
            self.log(f"node and {len(pending_crds)} CRDs applied ({time.monotonic() - t0:.1f}s)")
            kserve_bundle: JSON | None = None
            llmisvc_bundle: JSON | None = None
            if bundle is not None and llm_bundle is not None:
                kserve_bundle = self._result("KServe manifests", bundle, deadline)
                llmisvc_bundle = self._result("LLMInferenceService manifests", llm_bundle, deadline)
                self._prepare_kserve(client, p, kserve_bundle)
                self._prepare_llmisvc(client, p, llmisvc_bundle)
                self.log(
                    f"KServe installed, token and certificate ready ({time.monotonic() - t0:.1f}s)"
                )

            def established() -> bool:
                pending_crds[:] = [n for n in pending_crds if not _crd_established(client, n)]
                return not pending_crds

            timings = []

            def wait(what: str, component: Component, check: Callable[[], bool]) -> None:
                self._wait(component, deadline, check, everything, what=what)
                timings.append(f"{what} {time.monotonic() - t0:.1f}s")

            wait("CRDs established", apiserver, established)
            manager = llm_controller = None
            if kserve_bundle is not None:
                # KServe looks its CRDs up when it starts; the rest need not wait.
                manager = self._start_kserve(ports)
                llm_controller = self._start_llmisvc(ports)
                everything += [manager, llm_controller]
            wait("controller-manager", kcm, lambda: _https_ok(ports.controller_manager))
            wait("scheduler", scheduler, lambda: _https_ok(ports.scheduler))
            wait("node Ready", kwok, lambda: _node_ready(client, NODE_NAME))
            wait("default ServiceAccount", kcm, lambda: _has_default_sa(client))
            if manager is not None and kserve_bundle is not None:
                ca = str(p.ca.cert)
                health = f"http://127.0.0.1:{ports.kserve_health}/readyz"
                wait("KServe /readyz", manager, lambda: _http_ok(health, b"ok"))
                wait("KServe webhook TLS", manager, lambda: _tls_ok(ports.kserve_webhook, ca))
                hooks = kserve.webhook_configurations(
                    kserve_bundle["webhooks"], ports.kserve_webhook, p.ca.cert.read_bytes()
                )
                self._install(manager, client, hooks, "KServe webhook configurations")
                wait("KServe webhooks called", manager, lambda: kserve.webhooks_wired(client))
                self._install(manager, client, kserve_bundle["runtimes"], "KServe runtimes")
                timings.append(f"KServe runtimes {time.monotonic() - t0:.1f}s")
            if llm_controller is not None and llmisvc_bundle is not None:
                self._finish_llmisvc(llm_controller, client, p, llmisvc_bundle, wait)
            self.log("ready: " + ", ".join(timings))

    def _apply_all(self, client: APIClient, docs: list[JSON]) -> list[str]:
        """Apply the CRDs (in parallel), then the other documents; return the CRD names."""
        crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
        others = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda d: client.apply(object_path(d), d), crds))
            for doc in others:
                client.apply(object_path(doc), doc)
        except (APIError, ValueError, OSError) as err:
            raise ClusterError(f"installing CRDs failed: {err}") from err
        return [d["metadata"]["name"] for d in crds]

    def _install(
        self, component: Component, client: APIClient, docs: list[JSON], what: str
    ) -> None:
        """Apply `docs` (in parallel); a failure names `component` with its log tail."""
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda d: client.apply(object_path(d), d), docs))
        except (APIError, ValueError, OSError) as err:
            raise ClusterError(
                f"installing {what} failed: {err}\nlast lines of {component.log}:\n"
                f"{component.log_tail()}"
            ) from err

    def _result(self, what: str, future: concurrent.futures.Future[Any], deadline: float) -> Any:
        try:
            return future.result(timeout=max(1.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError as err:
            raise ClusterError(f"timed out preparing {what}") from err
        except manifests.ModuleError as err:
            raise ClusterError(f"preparing {what} failed: {err}") from err

    def _wait(
        self,
        component: Component,
        deadline: float,
        check: Callable[[], bool],
        watch: list[Component],
        what: str = "",
    ) -> None:
        """Poll `check` until true; fail naming the component that died or timed out."""
        interval = 0.05
        while True:
            for c in watch:
                if read_pidfile(c.pidfile) is None:
                    raise ClusterError(
                        f"{c.name} exited during start-up; last lines of {c.log}:\n{c.log_tail()}"
                    )
            with contextlib.suppress(OSError, ssl.SSLError, APIError, ValueError):
                if check():
                    return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{component.name} did not become ready in time"
                    f"{f' ({what})' if what else ''}; last lines of {component.log}:\n"
                    f"{component.log_tail()}"
                )
            time.sleep(interval)
            interval = min(interval * 1.5, 0.5)

    # ------------------------------------------------------------ components
    def _start_etcd(self, ports: Ports) -> Component:
        client_url = f"http://127.0.0.1:{ports.etcd_client}"
        peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
        c = self._component(
            "etcd",
            [
                "--name=rung",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=rung={peer_url}",
                "--initial-cluster-state=new",
                "--auto-compaction-retention=1",
                "--unsafe-no-fsync=true",  # throw-away test data; much faster on slow disks
                "--log-level=warn",
            ],
        )
        c.start()
        return c

    def _start_apiserver(self, ports: Ports, p: ClusterPKI) -> Component:
        c = self._component(
            "kube-apiserver",
            [
                "--advertise-address=127.0.0.1",
                # The lease reconciler refuses a loopback address; nothing in the
                # cluster dials the `kubernetes` Service here, so keep no Endpoints.
                "--endpoint-reconciler-type=none",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.apiserver}",
                f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
                f"--cert-dir={self.state_dir / 'apiserver'}",
                f"--tls-cert-file={p.apiserver.cert}",
                f"--tls-private-key-file={p.apiserver.key}",
                f"--client-ca-file={p.ca.cert}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction,ValidatingAdmissionPolicy",
                "--allow-privileged=true",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={p.sa_pub}",
                f"--service-account-signing-key-file={p.sa_key}",
                f"--requestheader-client-ca-file={p.front_proxy_ca.cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={p.front_proxy_client.cert}",
                f"--proxy-client-key-file={p.front_proxy_client.key}",
                "--profiling=false",
            ],
        )
        c.start()
        return c

    def _start_controller_manager(self, ports: Ports, p: ClusterPKI) -> Component:
        kubeconfig = self.state_dir / "kube-controller-manager.kubeconfig"
        c = self._component(
            "kube-controller-manager",
            [
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.controller_manager}",
                f"--cert-dir={self.state_dir / 'kube-controller-manager'}",
                "--leader-elect=false",
                f"--service-account-private-key-file={p.sa_key}",
                f"--root-ca-file={p.ca.cert}",
                "--use-service-account-credentials=true",
                f"--cluster-signing-cert-file={p.ca.cert}",
                f"--cluster-signing-key-file={p.ca.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--cluster-cidr={POD_CIDR}",
                # Local speed-ups: no client-side throttling of the ~40 controllers'
                # start-up calls; notice node readiness (and lift the not-ready taint) in 1s.
                "--kube-api-qps=500",
                "--kube-api-burst=1000",
                "--node-monitor-period=1s",
                "--profiling=false",
            ],
        )
        c.start()
        return c

    def _start_scheduler(self, ports: Ports) -> Component:
        kubeconfig = self.state_dir / "kube-scheduler.kubeconfig"
        c = self._component(
            "kube-scheduler",
            [
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.scheduler}",
                f"--cert-dir={self.state_dir / 'kube-scheduler'}",
                "--leader-elect=false",
                "--kube-api-qps=500",
                "--kube-api-burst=1000",
                "--profiling=false",
            ],
        )
        c.start()
        return c

    def _prepare_kserve(self, client: APIClient, p: ClusterPKI, bundle: JSON) -> None:
        """What KServe's manager needs before it starts, as a release install makes it:
        its namespace, ServiceAccount, RBAC and ConfigMap; plus a kubeconfig with a
        token of that ServiceAccount and a webhook serving certificate."""
        namespace: JSON = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": kserve.NAMESPACE},
        }
        try:
            client.apply(object_path(namespace), namespace)
            for doc in [*bundle["rbac"], kserve.configure(bundle["configmap"])]:
                client.apply(object_path(doc), doc)
            token, expires = kserve.request_token(client)
        except (APIError, ValueError, OSError) as err:
            raise ClusterError(f"installing KServe failed: {err}") from err
        self._controller_identity(
            p, self._kserve_dir, kserve.NAMESPACE, kserve.SERVICE_ACCOUNT, token, expires
        )
        self._webhook_cert(p, self._kserve_dir, "kserve-webhook-server", kserve.NAMESPACE)

    def _controller_identity(
        self,
        p: ClusterPKI,
        directory: Path,
        namespace: str,
        service_account: str,
        token: str,
        expires: str,
    ) -> None:
        """A controller's kubeconfig in `directory`: its ServiceAccount's token."""
        directory.mkdir(parents=True, exist_ok=True)
        write_kubeconfig(
            directory / "kubeconfig",
            server=self.server,
            ca_cert=p.ca.cert,
            user=f"system:serviceaccount:{namespace}:{service_account}",
            token=token,
        )
        (directory / "token-expires").write_text(expires + "\n")

    @staticmethod
    def _webhook_cert(p: ClusterPKI, directory: Path, server: str, namespace: str) -> None:
        """A webhook serving certificate where controller-runtime looks with
        TMPDIR=`directory`/tmp: for 127.0.0.1 and the webhook Service's DNS name."""
        certs = directory / "tmp" / "k8s-webhook-server" / "serving-certs"
        pki.sign_serving_cert(
            p,
            CertPair(certs / "tls.crt", certs / "tls.key"),
            server,
            dns=("localhost", f"{server}-service.{namespace}.svc"),
            ips=("127.0.0.1",),
        )

    def _start_kserve(self, ports: Ports) -> Component:
        """KServe's controller manager, as its Deployment runs it, but on loopback ports
        and without leader election. controller-runtime reads the webhook certificate
        from $TMPDIR/k8s-webhook-server/serving-certs/."""
        return self._start_controller(
            "kserve-controller",
            self._kserve_dir,
            kserve.NAMESPACE,
            (ports.kserve_webhook, ports.kserve_metrics, ports.kserve_health),
        )

    def _start_controller(
        self,
        name: str,
        directory: Path,
        namespace: str,
        ports: tuple[int, int, int],
        *extra: str,
    ) -> Component:
        """A controller-runtime manager of KServe's with its own kubeconfig and TMPDIR in
        `directory`, on loopback `ports` (webhook, metrics, health probes), no leader
        election."""
        webhook, metrics, health = ports
        c = self._component(
            name,
            [
                f"--kubeconfig={directory / 'kubeconfig'}",
                f"--webhook-port={webhook}",
                f"--metrics-addr=127.0.0.1:{metrics}",
                f"--health-probe-addr=127.0.0.1:{health}",
                "--leader-elect=false",
                *extra,
            ],
        )
        c.start(
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(directory),
                "TMPDIR": str(directory / "tmp"),
                "KUBECONFIG": str(directory / "kubeconfig"),
                "POD_NAMESPACE": namespace,
            }
        )
        return c

    def _prepare_llmisvc(self, client: APIClient, p: ClusterPKI, bundle: JSON) -> None:
        """As _prepare_kserve, for the LLMInferenceService controller: its ServiceAccount
        and RBAC, a kubeconfig with a token of it, a webhook serving certificate."""
        try:
            for doc in bundle["rbac"]:
                client.apply(object_path(doc), doc)
            token, expires = kserve.request_token(client, llmisvc.SERVICE_ACCOUNT)
        except (APIError, ValueError, OSError) as err:
            raise ClusterError(
                f"installing KServe's LLMInferenceService RBAC failed: {err}"
            ) from err
        self._controller_identity(
            p, self._llmisvc_dir, llmisvc.NAMESPACE, llmisvc.SERVICE_ACCOUNT, token, expires
        )
        self._webhook_cert(p, self._llmisvc_dir, "llmisvc-webhook-server", llmisvc.NAMESPACE)

    def _start_llmisvc(self, ports: Ports) -> Component:
        """KServe's LLMInferenceService controller (`cmd/llmisvc`), as its Deployment runs
        it, on loopback ports and without leader election (certificates: see _start_kserve)."""
        return self._start_controller(
            "llmisvc-controller",
            self._llmisvc_dir,
            llmisvc.NAMESPACE,
            (ports.llmisvc_webhook, ports.llmisvc_metrics, ports.llmisvc_health),
            "--zap-encoder=console",
        )

    def _finish_llmisvc(
        self,
        controller: Component,
        client: APIClient,
        p: ClusterPKI,
        bundle: JSON,
        wait: Callable[[str, Component, Callable[[], bool]], None],
    ) -> None:
        """Once the controller is ready: its webhooks pointed at it, then (validated by
        it) the presets, and KServe's default Gateway."""
        port = self.ports.llmisvc_webhook
        ca = p.ca.cert.read_bytes()
        health = f"http://127.0.0.1:{self.ports.llmisvc_health}/readyz"
        wait("LLMInferenceService controller /readyz", controller, lambda: _http_ok(health, b"ok"))
        wait("its webhook TLS", controller, lambda: _tls_ok(port, str(p.ca.cert)))
        hooks = kserve.webhook_configurations(bundle["webhooks"], port, ca)
        self._install(controller, client, hooks, "LLMInferenceService webhook configurations")
        wait("its webhooks called", controller, lambda: llmisvc.webhooks_wired(client))
        self._install(
            controller, client, [*bundle["presets"], *llmisvc.default_gateway()],
            "LLMInferenceServiceConfig presets and the default Gateway",
        )  # fmt: skip

    def _start_kwok(self, config: Path) -> Component:
        c = self._component(
            "kwok",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--config={config}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-lease-duration-seconds=40",
                f"--cidr={POD_CIDR}",
            ],
        )
        c.start()
        return c


_RESOURCES = {"cpu": "20000", "memory": "40Ti", "pods": "20000", "nvidia.com/gpu": "1000"}
#: The simulated node: untainted, so any pod schedules on it without tolerations.
_NODE: JSON = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": NODE_NAME,
        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        "labels": {
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": NODE_NAME,
            "node-role.kubernetes.io/agent": "",
            "type": "kwok",
        },
    },
    "spec": {},
    "status": {
        # Room for the benchmarks' thousands of predictor pods (KServe's runtimes request
        # 1 CPU and 2Gi each) and for vLLM pods asking for GPUs (KServe's
        # LLMInferenceService template); kwok runs no containers, nothing is reserved.
        "allocatable": _RESOURCES,
        "capacity": _RESOURCES,
    },
}


def _http_ok(url: str, expect: bytes) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200 and expect in resp.read())
    except (OSError, urllib.error.URLError):
        return False


def _tls_ok(port: int, cafile: str) -> bool:
    """A TLS server on 127.0.0.1:`port` presents a certificate for 127.0.0.1 from `cafile`."""
    ctx = ssl.create_default_context(cafile=cafile)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=2) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1"),
    ):
        return True


def _https_ok(port: int) -> bool:
    """/healthz of a component serving a self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=2
        ) as resp:
            return bool(resp.status == 200 and resp.read().strip() == b"ok")
    except (OSError, urllib.error.URLError):
        return False


def _conditions(obj: JSON | None) -> dict[str, str]:
    if not obj:
        return {}
    return {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions") or []}


def _node_ready(client: APIClient, name: str) -> bool:
    node = client.get(f"/api/v1/nodes/{name}")
    return _conditions(node).get("Ready") == "True" and not (node or {}).get("spec", {}).get(
        "taints"
    )


def _has_default_sa(client: APIClient) -> bool:
    """The controller-manager's ServiceAccount controller is working (pods need it)."""
    return client.get("/api/v1/namespaces/default/serviceaccounts/default") is not None


def _crd_established(client: APIClient, name: str) -> bool:
    crd = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return _conditions(crd).get("Established") == "True"


def ensure_cluster(state_dir: Path | str | None = None) -> LocalCluster:
    """Bring the local cluster up (reusing a running one) and return it."""
    cluster = LocalCluster(state_dir)
    cluster.up()
    return cluster


def install_crds(kubeconfig: Path | str, kubectl: str | None = None) -> list[str]:
    """Server-side apply the pinned third-party CRDs to any cluster (e.g. kind) with
    kubectl, wait until they are Established, and return their names."""
    binary = kubectl or _kubectl()
    docs = manifests.load_documents()
    names = [d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"]
    base = [binary, f"--kubeconfig={kubeconfig}"]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as fh:
        json.dump({"apiVersion": "v1", "kind": "List", "items": docs}, fh)
        fh.flush()
        _run(
            [
                *base,
                "apply",
                "--server-side",
                "--force-conflicts",
                f"--field-manager={FIELD_MANAGER}",
                "-f",
                fh.name,
            ]
        )
    _run(
        [
            *base,
            "wait",
            "--for=condition=Established",
            "--timeout=120s",
            *(f"crd/{n}" for n in names),
        ]
    )
    return names


def _kubectl() -> str:
    local = BinDirs.from_versions().binaries()["kubectl"]
    if os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("kubectl")
    if found is None:
        raise ClusterError("kubectl not found (run `make binaries` or install kubectl)")
    return found


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"{' '.join(argv[:4])} ... failed:\n{proc.stderr or proc.stdout}")
