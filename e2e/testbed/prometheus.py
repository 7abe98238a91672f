"""A real Prometheus server on 127.0.0.1 with a config written by the caller."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from testbed.modelserver import free_port


@dataclass
class ScrapeTarget:
    """One static scrape target and the labels a PodMonitor would have attached."""

    job: str
    address: str
    labels: dict[str, str] = field(default_factory=dict)


class PrometheusServer:
    """Start, stop and restart Prometheus with a fixed port and data directory."""

    def __init__(
        self, workdir: Path, targets: list[ScrapeTarget], scrape_interval: str = "1s"
    ) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed: run `make prometheus`")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.targets = targets
        self.scrape_interval = scrape_interval
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": t.job,
                    "static_configs": [{"targets": [t.address], "labels": t.labels}],
                }
                for t in self.targets
            ],
        }

    def start(self, timeout: float = 60) -> None:
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config()))
        log = (self.workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "prometheus exited:\n" + (self.workdir / "prometheus.log").read_text()[-3000:]
                )
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("prometheus did not become ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        return list(response.json()["data"]["result"])

    def wait_for_series(self, promql: str, timeout: float = 60) -> None:
        """Wait until `promql` returns data (the scrapes have landed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.query(promql):
                return
            time.sleep(0.25)
        raise RuntimeError(f"no data for {promql} after {timeout}s")
