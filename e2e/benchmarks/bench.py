"""Scale benchmark of Rung on the local cluster with the real KServe controller, Flagger
side by side. Writes e2e/benchmarks/scale-report.md and scale-report.json.

    .venv/bin/python e2e/benchmarks/bench.py                      # N = 1,000 and 5,000
    .venv/bin/python e2e/benchmarks/bench.py --count 100 --canaries 20
    .venv/bin/python e2e/benchmarks/bench.py --operator-ref HEAD  # a commit, not the tree

Every phase gets a fresh cluster (so one phase's objects never load the next):
for each N, the raw-client floor, Rung, and Flagger; then the canary decisions.
See e2e/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Run as a script: import the package `benchmarks` from e2e/, not the modules from here.
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)
sys.path[:0] = [str(ROOT / "e2e")]

from benchmarks import canary, convergence, flagger, floor, shards  # noqa: E402
from benchmarks.kit import BenchCluster, log, work_dir  # noqa: E402
from benchmarks.report import markdown, targets  # noqa: E402

PHASES = ("floor", "rung", "flagger", "canary", "shards")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--count", type=int, action="append", help="N (repeatable; default 1000 5000)")
    p.add_argument("--canaries", type=int, default=100, help="concurrent canaries (100)")
    p.add_argument("--interval", default="5s", help="canary analysis interval (5s)")
    p.add_argument("--concurrency", type=int, default=16, help="bench client requests in flight")
    p.add_argument("--idle-seconds", type=float, default=120, help="idle window (120)")
    p.add_argument("--paced", type=int, default=50, help="paced creates after convergence (50)")
    p.add_argument("--paced-interval", type=float, default=0.2, help="seconds between them")
    p.add_argument("--flagger-interval", default="1m", help="Flagger canaries' analysis interval")
    p.add_argument("--skip", action="append", choices=PHASES, default=[], help="skip a phase")
    p.add_argument(
        "--replicas",
        type=shards.parse_replicas,
        default=[1, 3],
        help="replica counts of the sharding phase, comma-separated (1,3)",
    )
    p.add_argument(
        "--ready-timeout",
        type=float,
        help="sharding phase: seconds to wait for every ModelDeployment Ready after the"
        " creates (default: as long as the Rung phase waits; KServe decides this figure)",
    )
    p.add_argument(
        "--operator-ref",
        help="measure Rung as committed at this git ref (default: the working tree)",
    )
    p.add_argument(
        "--cluster-dir",
        default=os.environ.get("RUNG_BENCH_CLUSTER_DIR") or str(ROOT / ".cluster-bench"),
        help="state directory of the bench's clusters (stopped and reused per phase)",
    )
    p.add_argument(
        "--port-base",
        type=int,
        default=int(os.environ.get("RUNG_BENCH_PORT_BASE", "0")) or None,
        help="port base of the bench's clusters (default: a free block)",
    )
    p.add_argument("--work-dir", help="logs, kubeconfigs, audit logs (default: a temp dir)")
    p.add_argument("--out", default=str(HERE), help="where scale-report.md/.json go")
    p.add_argument(
        "--merge",
        action="store_true",
        help="replace only the phases run now in the existing --out/scale-report.json",
    )
    p.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = p.parse_args(argv)
    args.count = args.count or [1000, 5000]
    return args


def operator_source(ref: str | None, work: Path) -> tuple[Path, str]:
    """The directory to import `rung` from, and what it is."""
    git = ["git", "-C", str(ROOT)]
    if ref is None:
        described = subprocess.run(
            [*git, "describe", "--always", "--dirty"], capture_output=True, text=True
        ).stdout.strip()
        return ROOT / "operator", f"working tree at {described or 'unknown'}"
    commit = subprocess.run(
        [*git, "rev-parse", "--short", ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    target = work / f"operator-{commit}"
    if not target.exists():
        archive = work / f"operator-{commit}.tar"
        subprocess.run([*git, "archive", "-o", str(archive), commit, "operator"], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    return target / "operator", f"commit {commit}"


def write(results: dict[str, Any], out: Path) -> None:
    results["targets"] = [t.as_json() for t in targets(results)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale-report.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "scale-report.md").write_text(markdown(results))
    log(f"wrote {out / 'scale-report.md'} and .json")
    for t in targets(results):
        log(f"{t.verdict():>12}  {t.what}: {t.value} {t.unit} (target {t.target})")


def merged(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """`old` with the phases of `new` put in (a rerun of some phases)."""

    def ran(result: Any) -> bool:  # a phase that failed before measuring keeps the old one
        return isinstance(result, dict) and set(result) != {"error"}

    for size, phases in new["sizes"].items():
        old.setdefault("sizes", {}).setdefault(size, {}).update(
            {k: v for k, v in phases.items() if ran(v)}
        )
    if ran(new.get("canary")):
        old["canary"] = new["canary"]
    meta = old.setdefault("meta", {})
    for key in ("phase_seconds", "load"):
        meta.setdefault(key, {}).update(new["meta"][key])
    reruns = meta.setdefault("reruns", [])
    reruns.append({k: new["meta"][k] for k in ("argv", "when", "operator", "run_minutes")})
    return old


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    out = Path(args.out)
    if args.render:
        write(json.loads((out / "scale-report.json").read_text()), out)
        return 0
    work = work_dir(args.work_dir)
    operator_dir, operator_what = operator_source(args.operator_ref, work)
    sys.path.insert(0, str(operator_dir))  # the floor plans with the same code
    crd_dir = work / "crds"
    crd_dir.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "rung", "crd", "--output-dir", str(crd_dir)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(operator_dir)},
        stdout=subprocess.DEVNULL,
    )
    log(f"work dir {work}; Rung from {operator_what}; cluster dir {args.cluster_dir}")
    results: dict[str, Any] = {"sizes": {}}
    phase_seconds: dict[str, float] = {}
    load: dict[str, dict[str, float]] = {}

    async def phase(name: str, run: object) -> dict[str, object]:
        cluster = BenchCluster(Path(args.cluster_dir), args.port_base, work, name, crd_dir)
        t0 = time.monotonic()
        load[name] = {"start": round(os.getloadavg()[0], 2)}
        try:
            cluster.up()
            return await run(cluster)  # type: ignore[operator,no-any-return]
        except Exception as error:
            traceback.print_exc()
            return {"error": f"{type(error).__name__}: {error}"[:2000]}
        finally:
            if getattr(cluster, "cluster", None) is not None:
                cluster.down()
            phase_seconds[name] = round(time.monotonic() - t0, 1)
            load[name]["end"] = round(os.getloadavg()[0], 2)

    for n in args.count:
        size: dict[str, object] = {}
        results["sizes"][str(n)] = size
        if "floor" not in args.skip:
            size["floor"] = await phase(
                f"floor-{n}", lambda c, n=n: floor.run(c, n, args.concurrency)
            )
        if "rung" not in args.skip:
            size["rung"] = await phase(
                f"rung-{n}",
                lambda c, n=n: convergence.run(
                    c, work, operator_dir, n, args.concurrency, args.idle_seconds,
                    args.paced, args.paced_interval,
                ),
            )  # fmt: skip
        if "shards" not in args.skip:
            size["shards"] = {
                str(r): await phase(
                    f"shards{r}-{n}",
                    lambda c, n=n, r=r: shards.run(
                        c, work, operator_dir, n, r, args.concurrency, args.ready_timeout
                    ),
                )
                for r in args.replicas
            }
        if "flagger" not in args.skip:
            size["flagger"] = await phase(
                f"flagger-{n}",
                lambda c, n=n: flagger.run(
                    c, work, n, args.concurrency, args.idle_seconds, args.flagger_interval
                ),
            )
    if "canary" not in args.skip:
        results["canary"] = await phase(
            "canary",
            lambda c: canary.run(
                c, work, operator_dir, args.canaries, args.interval, args.concurrency
            ),
        )
    results["meta"] = {
        "argv": " ".join(sys.argv[1:]) or "(defaults)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "operator": operator_what,
        "flagger_version": flagger.version(),
        "run_minutes": round((time.monotonic() - started) / 60, 1),
        "phase_seconds": phase_seconds,
        "load": load,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
    }
    if args.merge:
        results = merged(results, json.loads((out / "scale-report.json").read_text()))
    write(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
