"""A stand-in for vLLM: a real HTTP server with vLLM's OpenAI-compatible API and metric
names, and injectable faults. No GPU or model weights exist here, so it generates
tokens ("tok0 tok1 ...") at a set pace instead of running a model.

- `POST /v1/completions` and `/v1/chat/completions`, streamed (`"stream": true`,
  server-sent events ending in `data: [DONE]`) or not; `max_tokens` tokens (16 by
  default), the first after `--ttft-ms`, the next ones `--itl-ms` apart; a share
  `--error-rate` of requests fail with HTTP 500.
- `--api-key-file`: requests need `Authorization: Bearer <the file's content>`
  (plays an external provider); 401 otherwise.
- `GET /metrics`: vLLM's series, named as vLLM names them: the histograms
  `vllm:time_to_first_token_seconds`, `vllm:inter_token_latency_seconds`,
  `vllm:e2e_request_latency_seconds`, `vllm:request_queue_time_seconds` (vLLM's bucket
  bounds), the counters `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`,
  `vllm:request_success_total`, the gauges `vllm:kv_cache_usage_perc`,
  `vllm:num_requests_running`, and the HTTP server's `http_requests_total{handler,
  method, status}` (status grouped as `2xx`/`5xx`, as vLLM's instrumentator does).

Run:  python -m testbed.openai_server --port 18000 --model opt [--ttft-ms 100]
      [--itl-ms 10] [--error-rate 0.1] [--api-key-file key]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
REQUEST_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip


def _serve() -> None:
    import uvicorn
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Gauge,
        Histogram,
        generate_latest,
    )
    from prometheus_client import Counter as PromCounter
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=5.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--api-key-file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    key = Path(args.api_key_file).read_text().strip() if args.api_key_file else None
    rng = random.Random(args.seed)
    in_flight = [0]

    registry = CollectorRegistry()
    labels = {"model_name": args.model}
    ttft = Histogram(
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        ["model_name"],
        buckets=TTFT_BUCKETS,
        registry=registry,
    ).labels(**labels)
    itl = Histogram(
        "vllm:inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
        ["model_name"],
        buckets=ITL_BUCKETS,
        registry=registry,
    ).labels(**labels)
    e2e = Histogram(
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        ["model_name"],
        buckets=REQUEST_BUCKETS,
        registry=registry,
    ).labels(**labels)
    queue = Histogram(
        "vllm:request_queue_time_seconds",
        "Histogram of time spent in WAITING phase for request.",
        ["model_name"],
        buckets=REQUEST_BUCKETS,
        registry=registry,
    ).labels(**labels)
    prompt_tokens = PromCounter(
        "vllm:prompt_tokens", "Number of prefill tokens processed.", ["model_name"],
        registry=registry,
    ).labels(**labels)  # fmt: skip
    generation_tokens = PromCounter(
        "vllm:generation_tokens", "Number of generation tokens processed.", ["model_name"],
        registry=registry,
    ).labels(**labels)  # fmt: skip
    success = PromCounter(
        "vllm:request_success", "Count of successfully processed requests.",
        ["model_name", "finished_reason"], registry=registry,
    )  # fmt: skip
    kv_cache = Gauge(
        "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
        ["model_name"], registry=registry,
    ).labels(**labels)  # fmt: skip
    running = Gauge(
        "vllm:num_requests_running", "Number of requests in model execution batches.",
        ["model_name"], registry=registry,
    ).labels(**labels)  # fmt: skip
    http_requests = PromCounter(
        "http_requests", "Total number of requests by method, status and handler.",
        ["method", "status", "handler"], registry=registry,
    )  # fmt: skip

    def tokens_of(body: dict[str, Any]) -> tuple[int, int]:
        prompt = body.get("prompt") or " ".join(
            str(m.get("content", "")) for m in body.get("messages") or []
        )
        return max(1, len(str(prompt).split())), int(body.get("max_tokens") or 16)

    async def complete(request: Request) -> Response:
        handler = request.url.path
        if key is not None and request.headers.get("authorization") != f"Bearer {key}":
            http_requests.labels("POST", "4xx", handler).inc()
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        body = await request.json()
        chat = handler.endswith("/chat/completions")
        n_prompt, n_out = tokens_of(body)
        if rng.random() < args.error_rate:
            http_requests.labels("POST", "5xx", handler).inc()
            return JSONResponse({"error": {"message": "injected failure"}}, status_code=500)
        started = time.monotonic()
        queue.observe(0.0005)
        prompt_tokens.inc(n_prompt)
        in_flight[0] += 1
        running.set(in_flight[0])
        kv_cache.set(min(1.0, 0.05 + 0.01 * in_flight[0]))

        def chunk(i: int) -> dict[str, Any]:
            text = f"tok{i} "
            choice = (
                {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
            )
            return {"object": "chat.completion.chunk" if chat else "text_completion",
                    "model": args.model, "choices": [choice]}  # fmt: skip

        async def tokens() -> Any:
            last = started
            try:
                for i in range(n_out):
                    await asyncio.sleep((args.ttft_ms if i == 0 else args.itl_ms) / 1000)
                    now = time.monotonic()
                    (ttft if i == 0 else itl).observe(now - last)
                    last = now
                    generation_tokens.inc()
                    yield i
            finally:
                in_flight[0] -= 1
                running.set(in_flight[0])
            e2e.observe(time.monotonic() - started)
            success.labels(args.model, "length").inc()
            http_requests.labels("POST", "2xx", handler).inc()

        if body.get("stream"):

            async def sse() -> Any:
                async for i in tokens():
                    yield f"data: {json.dumps(chunk(i))}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(sse(), media_type="text/event-stream")
        text = "".join([f"tok{i} " async for i in tokens()])
        choice = {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {
            "index": 0, "text": text}  # fmt: skip
        usage = {"prompt_tokens": n_prompt, "completion_tokens": n_out}
        return JSONResponse({"model": args.model, "choices": [choice], "usage": usage})

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": args.model, "object": "model"}]})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/v1/completions", complete, methods=["POST"]),
            Route("/v1/chat/completions", complete, methods=["POST"]),
            Route("/v1/models", models),
            Route("/metrics", metrics),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


@dataclass
class OpenAIServerProcess:
    """A running stand-in vLLM server."""

    model: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_openai_server(
    model: str,
    log_dir: Path,
    *,
    ttft_ms: float = 50.0,
    itl_ms: float = 5.0,
    error_rate: float = 0.0,
    api_key_file: Path | None = None,
    timeout: float = 60,
) -> OpenAIServerProcess:
    """Start the stand-in and wait until it lists its model."""
    from testbed.modelserver import _env, free_port

    port = free_port()
    log_path = log_dir / f"openai-{model}-{port}.log"
    here = Path(__file__).resolve().parent
    command = [
        sys.executable, "-m", "testbed.openai_server", "--port", str(port), "--model", model,
        "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), "--error-rate", str(error_rate),
    ]  # fmt: skip
    if api_key_file is not None:
        command += ["--api-key-file", str(api_key_file)]
    proc = subprocess.Popen(
        command,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=here.parent,
        env={**_env(), "PYTHONPATH": str(here.parent)},
    )
    server = OpenAIServerProcess(model, port, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"openai server {model} exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/metrics", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"openai server {model} not ready:\n{log_path.read_text()[-3000:]}")


if __name__ == "__main__":
    _serve()
