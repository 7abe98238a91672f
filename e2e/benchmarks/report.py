"""The scale report: each figure next to its target, PASS or MISS, as markdown and JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


@dataclass
class Target:
    """One line of the summary: a measured figure against its target."""

    what: str
    applies_at: str
    value: float | None
    target: str
    passed: bool | None
    unit: str = ""
    note: str = ""

    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "MISS"

    def as_json(self) -> JSON:
        return {
            "what": self.what,
            "appliesAt": self.applies_at,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "verdict": self.verdict(),
            "note": self.note,
        }


def _get(data: JSON | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _burst_note(phases: JSON) -> str:
    """What bounds the burst figure: how fast the bench sent its creates, and how long
    the raw client took for the same ModelDeployment and InferenceService creates."""
    sent, floor = _get(phases, "rung", "creates_seconds"), _get(phases, "floor", "creates_seconds")
    if sent is None:
        return ""
    note = f"the bench's creates took {sent} s"
    if floor is not None:
        note += f"; the raw client's, with their InferenceServices, {floor} s"
    return note


def targets(results: JSON) -> list[Target]:
    out: list[Target] = []
    sizes: dict[str, JSON] = results.get("sizes", {})
    for size, phases in sizes.items():
        n = int(size)
        label = f"N={n:,}"
        out += _shard_targets(phases.get("shards"), label)
        if not any(phases.get(k) for k in ("floor", "rung", "flagger")):
            continue
        floor_s, rung_s = _get(phases, "floor", "seconds"), _get(phases, "rung", "seconds")
        ratio = round(floor_s / rung_s, 2) if floor_s and rung_s else None
        applies = n in (1000, 5000)
        out.append(
            Target(
                f"convergence vs raw-client floor, {label} (floor s / Rung s)",
                "1k and 5k",
                ratio,
                ">= 0.5",
                (ratio >= 0.5) if ratio is not None and applies else None,
                "x",
                f"floor {floor_s} s, Rung {rung_s} s",
            )
        )
        for kind, keys in (
            ("burst", ("rung", "create_to_inference_service_seconds", "p99")),
            ("paced", ("rung", "paced", "create_to_inference_service_seconds", "p99")),
        ):
            p99 = _get(phases, *keys)
            out.append(
                Target(
                    f"p99 create -> InferenceService ({kind}), {label}",
                    "1k",
                    p99,
                    "<= 2 s",
                    (p99 <= 2.0) if p99 is not None and n == 1000 else None,
                    "s",
                    _burst_note(phases) if kind == "burst" else "",
                )
            )
        idle = _get(phases, "rung", "idle") or {}
        at5k = n == 5000
        writes = idle.get("write_requests")
        out.append(
            Target(
                f"idle write requests (Rung), {label}",
                "5k",
                writes,
                "0",
                (writes == 0) if writes is not None and at5k else None,
                "requests",
                f"in {idle.get('window_seconds')} s",
            )
        )
        rate = idle.get("requests_per_second")
        out.append(
            Target(
                f"idle API requests/s (Rung), {label}",
                "5k",
                rate,
                "<= 1/s",
                (rate <= 1.0) if rate is not None and at5k else None,
                "req/s",
            )
        )
        rss = _get(phases, "rung", "peak_rss_mib")
        out.append(
            Target(
                f"peak RSS (Rung), {label}",
                "5k",
                rss,
                "<= 300 MiB",
                (rss <= 300) if rss is not None and at5k else None,
                "MiB",
            )
        )
        flagger_idle = _get(phases, "flagger", "idle") or {}
        for what, mine, theirs, unit in (
            ("idle CPU", idle.get("cpu_cores"), flagger_idle.get("cpu_cores"), "cores"),
            ("idle RSS", idle.get("rss_mib"), flagger_idle.get("rss_mib"), "MiB"),
        ):
            out.append(
                Target(
                    f"{what}, Rung vs Flagger, {label}",
                    "1k",
                    mine,
                    f"<= Flagger ({theirs})",
                    (mine <= theirs)
                    if mine is not None and theirs is not None and n == 1000
                    else None,
                    unit,
                )
            )
    canary = results.get("canary")
    if canary:
        interval = canary.get("interval_seconds")
        latency = _get(canary, "decision_latency_seconds", "p99")
        step = round(interval + latency, 3) if interval and latency is not None else None
        out.append(
            Target(
                f"canary decision, {canary.get('canaries')} concurrent canaries "
                "(interval + p99 of due -> weight changed)",
                f"{canary.get('canaries')} canaries",
                step,
                f"<= interval + 1 s ({interval + 1:g} s)" if interval else "",
                (step <= interval + 1)
                if step is not None and canary.get("canaries") == 100
                else None,
                "s",
                f"p99 decision latency {latency} s; raw step length p99 "
                f"{_get(canary, 'step_seconds', 'p99')} s",
            )
        )
    return out


def _shard_targets(shards: JSON | None, label: str) -> list[Target]:
    """Issue 15: one vs several replicas. The single-writer figure has a target (none);
    throughput and RSS are reported (the issue asks for them, with no target)."""
    if not shards:
        return []
    out: list[Target] = []
    counts = sorted(int(r) for r in shards if str(r).isdigit())
    for r in counts:
        data = shards[str(r)]
        if r > 1:
            two = _get(data, "single_writer", "objects_written_by_more_than_one_replica")
            foreign = _get(
                data, "single_writer", "objects_written_by_a_replica_not_owning_their_shard"
            )
            out.append(
                Target(
                    f"objects written by more than one replica, {r} replicas, {label}",
                    "any N",
                    two,
                    "0",
                    (two == 0 and foreign == 0) if two is not None else None,
                    "objects",
                    f"written by a replica not owning their shard: {foreign}",
                )
            )
        rss = _get(data, "totals", "peak_rss_mib_max")
        out.append(
            Target(
                f"peak RSS per replica (largest), {r} replica(s), {label}",
                "reported",
                rss,
                "reported (issue 15)",
                None,
                "MiB",
            )
        )
    one, many = shards.get(str(counts[0])), shards.get(str(counts[-1]))
    a = _get(one, "status_written", "objects_per_second")
    b = _get(many, "status_written", "objects_per_second")
    if len(counts) > 1:
        out.append(
            Target(
                f"status-written throughput, {counts[-1]} vs {counts[0]} replica(s), {label}",
                "reported",
                round(b / a, 2) if a and b else None,
                "reported (issue 15)",
                None,
                "x",
                f"{a} vs {b} objects/s",
            )
        )
    return out


def _shards_section(size: str, shards: JSON) -> list[str]:
    counts = sorted(int(r) for r in shards if str(r).isdigit())
    cols = [shards[str(r)] for r in counts]

    def row(what: str, *keys: str) -> list[Any]:
        return [what, *(_get(c, *keys) for c in cols)]

    parts = [
        "",
        f"## One vs three replicas, N = {int(size):,}",
        "",
        "Each replica count on a fresh cluster; the replicas are `rung run --shards R` "
        "(`--leader-elect` for one) with distinct `--identity`, one `--lease-namespace`, "
        "each as its own ServiceAccount. The shards are split before the N creates.",
        "",
        _table(
            ["", *(f"{r} replica{'s' if r > 1 else ''}" for r in counts)],
            [
                row("shards split before the creates, s", "split_seconds"),
                row("creates by the bench client, s", "creates_seconds"),
                row("every status written at its generation, s", "status_written", "seconds"),
                row("status-written throughput, objects/s", "status_written", "objects_per_second"),
                [
                    "create → status written p50 / p99, s",
                    *(_pair(_get(c, "status_written"), "create_to_status_seconds") for c in cols),
                ],
                row("Ready (KServe-bound) within the wait", "ready", "count"),
                row("... waited, s", "ready", "waited_seconds"),
                row("... every one Ready, s", "ready", "seconds"),
                row("... Ready objects/s", "ready", "objects_per_second"),
                row("API requests, all replicas", "totals", "api_requests"),
                row("reconciles, all replicas", "totals", "reconciles"),
                row(
                    "CPU until every status written, core-seconds (all replicas)",
                    "totals",
                    "cpu_seconds_until_status_written",
                ),
                row("peak RSS, largest replica, MiB", "totals", "peak_rss_mib_max"),
                row("peak RSS, all replicas, MiB", "totals", "peak_rss_mib_sum"),
                row(
                    "objects written by more than one replica",
                    "single_writer",
                    "objects_written_by_more_than_one_replica",
                ),
                row(
                    "objects written by a replica not owning their shard",
                    "single_writer",
                    "objects_written_by_a_replica_not_owning_their_shard",
                ),
                [
                    "status writes per object p50 / max",
                    *(
                        f"{_fmt(_get(c, 'single_writer', 'status_writes_per_object', 'p50'))}"
                        f" / {_fmt(_get(c, 'single_writer', 'status_writes_per_object', 'max'))}"
                        for c in cols
                    ),
                ],
                [
                    "1-min load average mean / max (sampled every 5 s)",
                    *(
                        f"{_fmt(_get(c, 'load_average', 'mean'))}"
                        f" / {_fmt(_get(c, 'load_average', 'max'))}"
                        for c in cols
                    ),
                ],
            ],
        ),
        "",
        "Per replica:",
        "",
    ]
    rows = []
    for r, c in zip(counts, cols, strict=True):
        for name, rep in (_get(c, "per_replica") or {}).items():
            methods = rep.get("api_requests_by_method", {})
            rows.append(
                [
                    f"{r}: {name}",
                    ", ".join(str(s) for s in rep.get("shards_owned", [])),
                    _get(c, "single_writer", "status_writes_by_replica", name),
                    rep.get("reconciles"),
                    rep.get("api_requests"),
                    ", ".join(f"{k} {v:,}" for k, v in methods.items()),
                    _get(rep, "cpu_until_status_written", "cpu_seconds"),
                    rep.get("peak_rss_mib"),
                    rep.get("rss_mib"),
                ]
            )
    parts.append(
        _table(
            [
                "replicas: identity",
                "shards owned",
                "status writes (audit)",
                "reconciles",
                "API requests (`rung_api_requests_total`)",
                "by method",
                "CPU until status written, core-s",
                "peak RSS (VmHWM), MiB",
                "settled RSS (VmRSS), MiB",
            ],
            rows,
        )
    )
    errors = {r: _get(c, "error") for r, c in zip(counts, cols, strict=True) if _get(c, "error")}
    if errors:
        parts += ["", "Errors: " + "; ".join(f"{r} replica(s): {e}" for r, e in errors.items())]
    if shards.get("note"):
        parts += ["", str(shards["note"])]
    return parts


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _requests_table(rung: JSON | None, flagger: JSON | None) -> str:
    keys: list[str] = []
    for data in (rung, flagger):
        for key in (data or {}).get("by_verb_and_resource", {}):
            if key not in keys:
                keys.append(key)
    if not keys:
        return "_no requests in the idle window_"
    rows = []
    for key in keys:
        rows.append(
            [
                f"`{key}`",
                _get(rung, "by_verb_and_resource", key),
                _get(rung, "apiserver_request_total", "delta_by_verb_and_resource", key),
                _get(flagger, "by_verb_and_resource", key),
                _get(flagger, "apiserver_request_total", "delta_by_verb_and_resource", key),
            ]
        )
    return _table(
        [
            "verb resource",
            "Rung req/s (audit)",
            "Rung Δ apiserver_request_total",
            "Flagger req/s (audit)",
            "Flagger Δ apiserver_request_total",
        ],
        rows,
    )


def markdown(results: JSON) -> str:
    meta = results["meta"]
    parts = [
        "# Scale report",
        "",
        f"Produced by `make bench` (`e2e/benchmarks/bench.py {meta['argv']}`) on "
        f"{meta['machine']}, {meta['when']}; the run took {meta['run_minutes']} min. "
        f"Rung: {meta['operator']}. Flagger {meta.get('flagger_version')}. "
        "Figures are measurements, never asserts; how they are taken is in "
        "[README.md](README.md).",
        "",
        *(
            [
                "Phases rerun since, and merged in: "
                + "; ".join(
                    f"`{r['argv']}` ({r['operator']}, {r['when']}, {r['run_minutes']} min)"
                    for r in meta["reruns"]
                ),
                "",
            ]
            if meta.get("reruns")
            else []
        ),
        "## Targets",
        "",
        _table(
            ["figure", "target applies at", "measured", "target", "verdict", "note"],
            [
                [
                    t.what,
                    t.applies_at,
                    f"{_fmt(t.value)} {t.unit}".strip(),
                    t.target,
                    f"**{t.verdict()}**",
                    t.note,
                ]
                for t in targets(results)
            ],
        ),
    ]
    for size, phases in results.get("sizes", {}).items():
        if phases.get("shards"):
            parts += _shards_section(size, phases["shards"])
        if not any(phases.get(k) for k in ("floor", "rung", "flagger")):
            continue
        floor, rung, flagger = phases.get("floor"), phases.get("rung"), phases.get("flagger")
        ridle, fidle = _get(rung, "idle"), _get(flagger, "idle")
        parts += [
            "",
            f"## N = {int(size):,}",
            "",
            _table(
                ["", "raw-client floor", "Rung", "Flagger"],
                [
                    [
                        "objects Ready / Initialized",
                        _get(floor, "ready"),
                        _get(rung, "ready"),
                        _get(flagger, "initialized"),
                    ],
                    [
                        "convergence, s",
                        _get(floor, "seconds"),
                        _get(rung, "seconds"),
                        _get(flagger, "seconds"),
                    ],
                    [
                        "objects/s",
                        _get(floor, "objects_per_second"),
                        _get(rung, "objects_per_second"),
                        _get(flagger, "objects_per_second"),
                    ],
                    [
                        "creates by the bench client, s",
                        _get(floor, "creates_seconds"),
                        _get(rung, "creates_seconds"),
                        _get(flagger, "creates_seconds"),
                    ],
                    [
                        "create → InferenceService p50 / p99, s (burst)",
                        _pair(floor, "create_to_inference_service_seconds"),
                        _pair(rung, "create_to_inference_service_seconds"),
                        "—",
                    ],
                    [
                        "create → InferenceService p50 / p99, s (paced)",
                        "—",
                        _pair(_get(rung, "paced"), "create_to_inference_service_seconds"),
                        "—",
                    ],
                    [
                        "CPU during convergence, core-seconds",
                        "—",
                        _get(rung, "convergence_cpu", "cpu_seconds"),
                        _get(flagger, "convergence_cpu", "cpu_seconds"),
                    ],
                    [
                        "idle API requests/s (its own, audit)",
                        "—",
                        _get(ridle, "requests_per_second"),
                        _get(fidle, "requests_per_second"),
                    ],
                    [
                        "idle write requests in the window",
                        "—",
                        _get(ridle, "write_requests"),
                        _get(fidle, "write_requests"),
                    ],
                    [
                        "idle Δ apiserver_request_total, req/s",
                        "—",
                        _get(ridle, "apiserver_request_total", "requests_per_second_delta"),
                        _get(fidle, "apiserver_request_total", "requests_per_second_delta"),
                    ],
                    ["idle CPU, cores", "—", _get(ridle, "cpu_cores"), _get(fidle, "cpu_cores")],
                    ["idle RSS, MiB", "—", _get(ridle, "rss_mib"), _get(fidle, "rss_mib")],
                    [
                        "peak RSS, MiB",
                        "—",
                        _get(rung, "peak_rss_mib"),
                        _get(flagger, "peak_rss_mib"),
                    ],
                ],
            ),
            "",
            f"Idle requests by verb and resource (windows of {_get(ridle, 'window_seconds')} s "
            f"for Rung, {_get(fidle, 'window_seconds')} s for Flagger; the Δ columns are the "
            "apiserver's counters over the window minus the background measured right after "
            "the client stopped):",
            "",
            _requests_table(ridle, fidle),
        ]
        errors = {k: v.get("error") for k, v in phases.items() if v and v.get("error")}
        if errors:
            parts += ["", "Errors: " + "; ".join(f"{k}: {v}" for k, v in errors.items())]
    canary = results.get("canary")
    if canary:
        parts += [
            "",
            f"## Canary decisions: {canary.get('canaries')} concurrent canaries, "
            f"interval {canary.get('interval_seconds')} s",
            "",
            _table(
                ["", "value"],
                [
                    ["steps", ", ".join(str(s) for s in canary.get("steps", []))],
                    ["canaries promoted", canary.get("promoted")],
                    ["weight changes observed", canary.get("decisions")],
                    [
                        "decision latency (due by the status clock) p50 / p99 / max, s",
                        _triple(canary, "decision_latency_seconds"),
                    ],
                    [
                        "... due from when the bench first saw that status, p50 / p99 / max, s",
                        _triple(canary, "decision_latency_from_first_seen_seconds"),
                    ],
                    ["step length p50 / p99 / max, s", _triple(canary, "step_seconds")],
                    [
                        "decisions that waited for the canary to be Ready",
                        canary.get("decisions_waiting_for_canary_ready"),
                    ],
                    [
                        "spec change → canary InferenceService Ready p50 / p99, s",
                        _pair(canary, "canary_ready_seconds"),
                    ],
                    [
                        "spec change → canary started p50 / p99, s",
                        _pair(canary, "canary_start_seconds"),
                    ],
                    ["spec change → last promoted, s", canary.get("rollout_seconds")],
                    [
                        "operator CPU during the rollouts, cores",
                        _get(canary, "rollout_cpu", "cpu_cores"),
                    ],
                    ["operator RSS, MiB", canary.get("rss_mib")],
                ],
            ),
        ]
        if canary.get("error"):
            parts += ["", f"Error: {canary['error']}"]
    parts += ["", "## Phase durations", ""]
    load = meta.get("load", {})
    parts.append(
        _table(
            ["phase", "minutes", "1-min load average at start / end (2 cores, shared)"],
            [
                [k, round(v / 60, 1), f"{_get(load, k, 'start')} / {_get(load, k, 'end')}"]
                for k, v in meta.get("phase_seconds", {}).items()
            ],
        )
    )
    return "\n".join(parts) + "\n"


def _pair(data: JSON | None, key: str) -> str:
    s = _get(data, key) or {}
    if s.get("p50") is None:
        return "—"
    return f"{_fmt(s['p50'])} / {_fmt(s['p99'])}"


def _triple(data: JSON | None, key: str) -> str:
    s = _get(data, key) or {}
    if s.get("p50") is None:
        return "—"
    return f"{_fmt(s['p50'])} / {_fmt(s['p99'])} / {_fmt(s['max'])}"
