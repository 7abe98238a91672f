"""charts/rung: files kept in step with the rest of the repository (no cluster needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import rung.observability  # noqa: F401  (registers the operator's metrics)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "rung"


def test_chart_crds_are_the_repository_crds() -> None:
    """charts/rung/crds/ is a copy of crds/: run `make crds` after changing the API."""
    ours = {p.name: p.read_text() for p in sorted((REPO / "crds").glob("*.yaml"))}
    chart = {p.name: p.read_text() for p in sorted((CHART / "crds").glob("*.yaml"))}

    assert chart.keys() == ours.keys(), "run `make crds`"
    stale = [name for name in ours if chart[name] != ours[name]]
    assert stale == [], f"charts/rung/crds/ differs from crds/ in {stale}: run `make crds`"


def _paths(values: dict[str, Any], prefix: str = "") -> dict[str, bool]:
    """Every key path of values.yaml, and whether it is a leaf (not a non-empty map)."""
    paths: dict[str, bool] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        nested = isinstance(value, dict) and bool(value)
        paths[path] = not nested
        if nested:
            paths.update(_paths(value, f"{path}."))
    return paths


def test_every_value_is_documented() -> None:
    """Each value has a row in the README's tables, itself or through a parent row
    (`resources` documents `resources.requests.cpu`), and every row names a value."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    section = readme.split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\|\s*`([^`]+)`", section, flags=re.M))
    paths = _paths(values)

    def covered(path: str) -> bool:
        parts = path.split(".")
        return any(".".join(parts[:n]) in documented for n in range(1, len(parts) + 1))

    missing = [path for path, leaf in paths.items() if leaf and not covered(path)]
    unknown = sorted(documented - set(paths))

    assert missing == [], f"values without a row in charts/rung/README.md: {missing}"
    assert unknown == [], f"README rows for values that do not exist: {unknown}"


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((CHART / "dashboards" / "rung.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def test_dashboard_queries_name_only_metrics_the_operator_exports() -> None:
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    exported = {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("rung_")
        for suffix in suffixes.get(family.type, ("",))
    }
    used = {m for expr in _dashboard_exprs() for m in re.findall(r"\brung_[a-z_]+", expr)}

    assert used, "the dashboard queries no rung metric"
    assert used <= exported, f"unknown metrics: {sorted(used - exported)}"


def test_dashboard_covers_the_issue_panels() -> None:
    exprs = " ".join(_dashboard_exprs())

    for metric in (
        "rung_reconciles_total",
        "rung_reconcile_errors_total",
        "rung_reconcile_duration_seconds_bucket",
        "rung_rollouts_total",
        "rung_analysis_checks_total",
        "rung_retraining_runs_total",
    ):
        assert metric in exprs, metric


def test_dashboard_shows_who_holds_which_shard_and_reconciles_per_replica() -> None:
    dashboard = json.loads((CHART / "dashboards" / "rung.json").read_text())
    by_title = {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in dashboard["panels"]}

    assert any("rung_shard_holder" in e and "identity" in e for e in by_title["Shard holders"])
    assert any("by (identity)" in e for e in by_title["Shards held by replica"])
    assert any(
        "rung_reconciles_total" in e and "by (pod)" in e
        for e in by_title["Reconciles / s by replica"]
    )
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_argocd_example_syncs_crds_before_the_operator_before_models() -> None:
    apps = list(yaml.safe_load_all((REPO / "examples" / "argocd" / "application.yaml").read_text()))
    wave = {
        a["metadata"]["name"]: int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for a in apps
    }
    paths = {a["metadata"]["name"]: a["spec"]["source"]["path"] for a in apps}

    assert wave["rung-crds"] < wave["rung"] < wave["models-team-a"]
    assert (REPO / paths["rung-crds"]).is_dir()
    assert (REPO / paths["rung"] / "Chart.yaml").exists()
    crds_app = next(a for a in apps if a["metadata"]["name"] == "rung-crds")
    assert "finalizers" not in crds_app["metadata"]  # deleting it must not delete the CRD
    assert crds_app["spec"]["syncPolicy"]["automated"]["prune"] is False
