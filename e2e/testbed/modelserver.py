"""A KServe ModelServer serving a tiny linear scoring model, with injectable faults.

Run as a process:  python -m testbed.modelserver --model_name fraud --http_port 18080 \
                   [--error-rate 0.2] [--delay-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def _serve() -> None:
    import kserve
    from kserve.errors import InferenceError

    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    args, _ = parser.parse_known_args()

    class ScoringModel(kserve.Model):  # type: ignore[misc]
        """Scores `instances` with fixed weights; fails or stalls on request."""

        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.weights = [0.4, -0.2, 0.1, 0.3]
            self.random = random.Random(args.seed)
            self.load()

        def load(self) -> bool:
            self.ready = True
            return True

        async def predict(
            self, payload: Any, headers: Any = None, response_headers: Any = None
        ) -> dict[str, Any]:
            if args.delay_ms:
                await asyncio.sleep(args.delay_ms / 1000)
            if self.random.random() < args.error_rate:
                raise InferenceError("injected failure")
            rows = payload["instances"]
            scores = [sum(w * x for w, x in zip(self.weights, row, strict=False)) for row in rows]
            return {"predictions": [1 if s > 0 else 0 for s in scores]}

    model = ScoringModel(args.model_name)
    kserve.ModelServer(http_port=args.http_port, enable_grpc=False, workers=1).start([model])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ModelServerProcess:
    """A running model server process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_model_server(
    name: str, log_dir: Path, *, error_rate: float = 0.0, delay_ms: float = 0.0, timeout: float = 60
) -> ModelServerProcess:
    """Start a model server and wait until it reports the model ready."""
    port = free_port()
    log_path = log_dir / f"modelserver-{name}-{port}.log"
    here = Path(__file__).resolve().parent
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testbed.modelserver",
            "--model_name",
            name,
            "--http_port",
            str(port),
            "--error-rate",
            str(error_rate),
            "--delay-ms",
            str(delay_ms),
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=here.parent,
        env={**_env(), "PYTHONPATH": str(here.parent)},
    )
    server = ModelServerProcess(name, port, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"model server {name} exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/v1/models/{name}", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"model server {name} not ready:\n{log_path.read_text()[-3000:]}")


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


if __name__ == "__main__":
    _serve()
