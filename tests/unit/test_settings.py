"""Operator settings: environment variables, and flags over them."""

from __future__ import annotations

import pytest

from rung.cli import build_parser
from rung.settings import OperatorSettings


def test_defaults() -> None:
    settings = OperatorSettings.from_env({})
    assert settings.namespaces == ()
    assert settings.json_logs is False
    assert settings.peering is None
    assert (
        settings.resync_seconds == 300.0
    )  # a safety net: objects are woken when their own work is due


def test_every_setting_has_an_environment_variable() -> None:
    settings = OperatorSettings.from_env(
        {
            "RUNG_NAMESPACES": "team-a,team-b",
            "RUNG_JSON_LOGS": "true",
            "RUNG_LIVENESS": "http://0.0.0.0:8080/healthz",
            "RUNG_METRICS_PORT": "9090",
            "RUNG_PEERING": "rung",
            "RUNG_PROMETHEUS_URL": "http://prometheus:9090",
            "RUNG_RESYNC_SECONDS": "5",
            "RUNG_VERBOSE": "1",
            "RUNG_LEADER_ELECT": "true",
            "RUNG_LEASE_NAMESPACE": "rung-system",
            "RUNG_LEASE_NAME": "rung-prod",
            "RUNG_SHARDS": "4",
            "RUNG_IDENTITY": "rung-0",
            "RUNG_ALLOWED_HOSTS": "*.monitoring.svc, 10.0.0.0/8",
        }
    )
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.json_logs is True
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert settings.metrics_port == 9090
    assert settings.peering == "rung"
    assert settings.prometheus_url == "http://prometheus:9090"
    assert settings.resync_seconds == 5.0
    assert settings.verbose is True
    assert (settings.leader_elect, settings.lease_namespace, settings.lease_name) == (
        True,
        "rung-system",
        "rung-prod",
    )
    assert (settings.shards, settings.identity) == (4, "rung-0")
    assert settings.allowed_hosts == ("*.monitoring.svc", "10.0.0.0/8")


@pytest.mark.parametrize(
    ("settings", "elects"),
    [
        (OperatorSettings(), False),  # one replica, as before: no Lease at all
        (OperatorSettings(leader_elect=True), True),
        (OperatorSettings(shards=3), True),
        (OperatorSettings(peering="rung"), True),  # deprecated: now means leader election
    ],
)
def test_when_replicas_coordinate_through_leases(settings: OperatorSettings, elects: bool) -> None:
    assert settings.elects is elects


@pytest.mark.parametrize(
    ("argv", "attr", "value"),
    [
        (["run", "-n", "a", "-n", "b"], "namespace", ["a", "b"]),
        (["run", "--json-logs"], "json_logs", True),
        (
            ["run", "--liveness", "http://0.0.0.0:8080/healthz"],
            "liveness",
            "http://0.0.0.0:8080/healthz",
        ),
        (["run", "--peering", "rung"], "peering", "rung"),
        (["run", "--prometheus-url", "http://p:9090"], "prometheus_url", "http://p:9090"),
        (["run", "--resync-seconds", "2"], "resync_seconds", 2.0),
        (["run", "--metrics-port", "9090"], "metrics_port", 9090),
        (["run", "--leader-elect"], "leader_elect", True),
        (["run", "--shards", "3"], "shards", 3),
        (["run", "--lease-namespace", "rung-system"], "lease_namespace", "rung-system"),
        (["run", "--lease-name", "rung-prod"], "lease_name", "rung-prod"),
        (["run", "--identity", "rung-0"], "identity", "rung-0"),
        (["run", "--allowed-hosts", "a.svc,10.0.0.0/8"], "allowed_hosts", ["a.svc", "10.0.0.0/8"]),
    ],
)
def test_run_flags(argv: list[str], attr: str, value: object) -> None:
    assert getattr(build_parser().parse_args(argv), attr) == value


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["deploy"])
    assert "invalid choice" in capsys.readouterr().err
