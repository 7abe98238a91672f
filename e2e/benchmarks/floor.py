"""The raw-client floor: what a plain concurrent client needs to do Rung's work for N
level-0 ModelDeployments.

The client creates each ModelDeployment (the user's part), then at once the
InferenceService Rung would create for it (the body comes from Rung's own planner),
watches the InferenceServices, and when KServe reports one Ready writes the
ModelDeployment's status (again the one Rung's planner computes from the live
InferenceService). No reads besides the one watch, no retries, no bookkeeping: the
least work that gets every ModelDeployment to Ready, on the same cluster with the
same KServe controller. Rung's convergence is compared with this.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks.kit import (
    ISVC,
    JSON,
    MD,
    BenchCluster,
    bounded,
    check,
    condition_true,
    log,
    path,
    summary,
    watching,
)

NAMESPACE = "floor"
WARM_UP = {"name": "warm-up", "namespace": NAMESPACE, "uid": "0", "generation": 1}


def model_deployment(name: str, namespace: str, level: int = 0, **spec: Any) -> JSON:
    """The ModelDeployment every size phase creates (level 0, sklearn)."""
    return {
        "apiVersion": MD[0],
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "maturity": {"level": level},
            "model": {
                "format": "sklearn",
                "storageUri": f"s3://models/{name}/v1",
                "version": "v1",
                "data": {"uri": f"s3://datasets/{name}", "version": "2025-02-01"},
            },
            # Level 2 needs a release owner, level 4 a risk reviewer (CEL at admission).
            "owners": {
                "releaseOwner": {"name": "bench", "contact": "bench@example.com"},
                "riskReviewer": {"name": "bench", "contact": "bench@example.com"},
            },
            **spec,
        },
    }


def planned(md_body: JSON, isvc: JSON | None = None) -> tuple[JSON, JSON]:
    """(the InferenceService, the status) Rung's planner wants for this object."""
    from rung.api.resource import ModelDeployment
    from rung.plan.reconcile import ClusterFeatures, Observation, plan

    md = ModelDeployment.from_body(md_body)
    observed = {md_body["metadata"]["name"]: isvc} if isvc else {}
    result = plan(
        Observation(
            md=md,
            now=datetime.now(UTC),
            features=ClusterFeatures(prometheus_operator=True, gateway_api=True),
            inference_services=observed,
        )
    )
    desired = next(o for o in result.desired if o["kind"] == "InferenceService")
    status = result.status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return desired, status


async def run(cluster: BenchCluster, count: int, concurrency: int) -> JSON:
    cluster.namespace(NAMESPACE)
    created: dict[str, JSON] = {}
    created_at: dict[str, float] = {}
    isvc_at: dict[str, float] = {}
    written_at: dict[str, float] = {}
    ready: asyncio.Queue[tuple[str, JSON]] = asyncio.Queue()
    queued: set[str] = set()
    requests = 0

    def on_isvc(kind: str, obj: JSON, at: float) -> None:
        name = obj["metadata"]["name"]
        isvc_at.setdefault(name, at)
        if name not in queued and condition_true(obj, "Ready"):
            queued.add(name)
            ready.put_nowait((name, obj))

    planned(model_deployment("warm-up", NAMESPACE) | {"metadata": WARM_UP})  # imports
    async with cluster.api.aclient(concurrency) as client:
        gate = asyncio.Semaphore(concurrency)

        async def create(i: int) -> None:
            nonlocal requests
            name = f"m-{i:05d}"
            body = model_deployment(name, NAMESPACE)
            async with gate:
                md = check(await client.post(path(*MD, NAMESPACE), json=body), f"create {name}")
                created[name], created_at[name] = md, time.time()
                isvc, _ = planned(md)
                check(await client.post(path(*ISVC, NAMESPACE), json=isvc), f"isvc {name}")
                requests += 2

        async def write_status() -> None:
            nonlocal requests
            while True:
                name, isvc = await ready.get()
                _, status = planned(created[name], isvc)
                async with gate:
                    check(
                        await client.patch(
                            path(*MD, NAMESPACE, name, "status"),
                            json={"status": status},
                            headers={"Content-Type": "application/merge-patch+json"},
                        ),
                        f"status {name}",
                    )
                written_at[name] = time.time()
                requests += 1

        async with watching(client, path(*ISVC, NAMESPACE), on_isvc):
            writers = [asyncio.create_task(write_status()) for _ in range(concurrency)]
            start = time.time()
            await bounded(concurrency * 2, [lambda i=i: create(i) for i in range(count)])
            created_s = time.time() - start
            deadline = time.monotonic() + max(600.0, count * 0.5)
            while len(written_at) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            for task in writers:
                task.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
    done = len(written_at)
    seconds = (max(written_at.values()) - start) if written_at else float("nan")
    latencies = [isvc_at[n] - created_at[n] for n in created_at if n in isvc_at]
    result = {
        "count": count,
        "concurrency": concurrency,
        "ready": done,
        "seconds": round(seconds, 2),
        "objects_per_second": round(done / seconds, 1) if done else 0,
        "creates_seconds": round(created_s, 2),
        "requests": requests,
        "create_to_inference_service_seconds": summary(latencies),
    }
    log(f"floor N={count}: {done} Ready in {seconds:.1f}s ({result['objects_per_second']}/s)")
    if done < count:
        result["error"] = f"only {done} of {count} reached Ready"
    return result
