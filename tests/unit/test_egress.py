"""rung.egress: the operator calls only URLs whose host --allowed-hosts covers."""

from __future__ import annotations

import pytest

from rung.egress import UrlPolicy

DNS = {
    "prometheus.monitoring.svc": ["10.96.0.20"],
    "sink.audit.svc": ["10.96.3.4"],
    "metadata.internal": ["169.254.169.254"],
    "split.example": ["10.1.2.3", "203.0.113.9"],
    "v6.example": ["fd00::5"],
}


def resolve(host: str) -> list[str]:
    if host not in DNS:
        raise OSError(f"no such host {host}")
    return DNS[host]


def policy(*allowed: str) -> UrlPolicy:
    return UrlPolicy(allowed, resolve=resolve)


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        ((), "http://169.254.169.254/latest/meta-data"),  # no list: everything, as before
        (("prometheus.monitoring.svc",), "http://prometheus.monitoring.svc:9090"),
        (("Prometheus.Monitoring.SVC.",), "http://prometheus.monitoring.svc./api"),
        (("*.monitoring.svc",), "http://prometheus.monitoring.svc:9090"),
        (("*.svc",), "https://sink.audit.svc/events"),
        (("10.96.0.0/16",), "http://prometheus.monitoring.svc:9090"),
        (("10.96.0.0/16",), "http://10.96.7.7:9090"),
        (("fd00::/8",), "http://v6.example"),
        (("fd00::/8",), "http://[fd00::9]:80/x"),
    ],
)
def test_allowed(allowed: tuple[str, ...], url: str) -> None:
    assert policy(*allowed).refusal(url) is None


@pytest.mark.parametrize(
    ("allowed", "url", "why"),
    [
        (("prometheus.monitoring.svc",), "http://metadata.internal/", "not among"),
        (("*.monitoring.svc",), "http://monitoring.svc/", "not among"),  # the domain itself
        (("*.monitoring.svc",), "http://evilmonitoring.svc/", "not among"),
        (("10.96.0.0/16",), "http://metadata.internal/", "resolves to 169.254.169.254"),
        (("10.0.0.0/8",), "http://split.example/", "resolves to 203.0.113.9"),
        (("10.0.0.0/8",), "http://169.254.169.254/", "not among"),
        (("10.0.0.0/8",), "http://nowhere.example/", "cannot be resolved"),
        (("10.0.0.0/8",), "file:///etc/passwd", "not an http(s) URL"),
        (("10.0.0.0/8",), "http:///nohost", "not an http(s) URL with a host"),
    ],
)
def test_refused(allowed: tuple[str, ...], url: str, why: str) -> None:
    refusal = policy(*allowed).refusal(url)
    assert refusal is not None
    assert why in refusal
    assert "--allowed-hosts" in refusal or "URL" in refusal or "resolved" in refusal


def test_parse_a_comma_separated_setting() -> None:
    parsed = UrlPolicy.parse(" prometheus.monitoring.svc , 10.0.0.0/8,,")
    assert parsed.allowed == ("prometheus.monitoring.svc", "10.0.0.0/8")
    assert parsed.restricts
    assert not UrlPolicy.parse("").restricts
    assert not UrlPolicy.parse(None).restricts
