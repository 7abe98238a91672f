"""Which URLs from a ModelDeployment the operator may call (`--allowed-hosts`).

A ModelDeployment names URLs the operator itself calls: its Prometheus, the audit sink
that receives the decision CloudEvents, a webhook or Kubeflow Pipelines endpoint that
starts retraining. A tenant who may create ModelDeployments in one namespace could
otherwise make the operator, from its own network position, call any endpoint (the
cloud metadata service, an internal admin API). With allowed hosts set, every such URL
must name a host that matches one of them:

- `prometheus.monitoring.svc`: that host exactly (case-insensitive, a trailing dot ignored);
- `*.monitoring.svc.cluster.local`: any host under that domain (not the domain itself);
- `10.0.0.0/8`, `fd00::/8`, `192.0.2.10`: an IP address in that network. A host name
  is resolved, and every address it resolves to must be inside an allowed network.

An empty list allows every URL (the default, as before). URLs the operator is given by
its own flags (`--prometheus-url`) are trusted. A refused URL is never called: the call
fails with the reason, which becomes the usual condition and Event (a Prometheus is an
analysis error, a launcher a launch failure, an audit sink a dropped decision).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]
RESOLVE_TTL = 30.0
"""Seconds a host name's addresses are reused before resolving it again."""


def _resolve(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


@dataclass
class UrlPolicy:
    """The operator's allowed hosts; `refusal(url)` says why a URL may not be called."""

    allowed: tuple[str, ...] = ()
    resolve: Resolver = _resolve
    _hosts: tuple[str, ...] = field(init=False, default=())
    _suffixes: tuple[str, ...] = field(init=False, default=())
    _networks: tuple[Network, ...] = field(init=False, default=())
    _cache: dict[str, tuple[float, list[str]]] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        hosts, suffixes, networks = [], [], []
        for raw in self.allowed:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                suffixes.append(entry[1:])  # ".monitoring.svc"
            else:
                hosts.append(entry)
        self._hosts, self._suffixes, self._networks = tuple(hosts), tuple(suffixes), tuple(networks)

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> UrlPolicy:
        """From a comma-separated list (RUNG_ALLOWED_HOSTS) or an iterable of entries."""
        if text is None:
            return cls()
        items = text.split(",") if isinstance(text, str) else list(text)
        return cls(tuple(i.strip() for i in items if i.strip()))

    @property
    def restricts(self) -> bool:
        return bool(self._hosts or self._suffixes or self._networks)

    def refusal(self, url: str) -> str | None:
        """None when the operator may call `url`; otherwise why not."""
        if not self.restricts:
            return None
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").rstrip(".").lower()
        except ValueError:
            return f"{url!r} is not a URL"
        if parts.scheme not in ("http", "https") or not host:
            return f"{url!r} is not an http(s) URL with a host"
        if host in self._hosts or any(host.endswith(s) for s in self._suffixes):
            return None
        if not self._networks:
            return self._refused(url, host)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                addresses = [ipaddress.ip_address(a) for a in self._addresses(host)]
            except (OSError, ValueError) as error:
                return f"{url}: host {host} cannot be resolved to check it ({error})"
        outside = [a for a in addresses if not any(a in n for n in self._networks)]
        if addresses and not outside:
            return None
        where = f" (resolves to {', '.join(map(str, outside))})" if str(outside[0]) != host else ""
        return self._refused(url, host) + where

    def _refused(self, url: str, host: str) -> str:
        return (
            f"{url}: host {host} is not among the operator's allowed hosts"
            f" ({', '.join(self.allowed)}; --allowed-hosts)"
        )

    def _addresses(self, host: str) -> list[str]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(host)
            if cached is not None and now - cached[0] < RESOLVE_TTL:
                return cached[1]
        addresses = self.resolve(host)
        with self._lock:
            self._cache[host] = (now, addresses)
        return addresses


class RefusedUrlError(RuntimeError):
    """A URL the operator's allowed hosts do not cover."""
