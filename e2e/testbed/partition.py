"""The partition stand-in: a TCP proxy on 127.0.0.1 between one client and the API
server that a test can cut and heal.

A replica whose kubeconfig points at the proxy talks to the real API server through it
(TLS passes through untouched: the API server's certificate names 127.0.0.1). `cut()`
plays a network partition as a black hole: bytes in either direction on open
connections are dropped, and new connections are accepted but never forwarded, so the
client's requests hang until its own timeouts, as they do when packets are lost.
`heal()` closes every connection that lived through the cut (what the client sees when
a partition ends: its old connections are dead) and forwards new ones again. Nothing
sent during the cut ever reaches the API server.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlparse


class PartitionProxy:
    """Forwards 127.0.0.1:`port` to `upstream` (host, port) until cut."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._doomed: set[socket.socket] = set()
        """Connections that lived through a cut: closed at heal()."""
        self.dropped_bytes = 0

    @classmethod
    def to_server(cls, server_url: str) -> PartitionProxy:
        url = urlparse(server_url)
        return cls((url.hostname or "127.0.0.1", url.port or 443))

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def cut(self) -> None:
        with self._lock:
            self._doomed |= self._open
        self._cut.set()

    def heal(self) -> None:
        with self._lock:
            doomed, self._doomed = self._doomed, set()
        self._cut.clear()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> PartitionProxy:
        threading.Thread(target=self._accept, daemon=True, name="partition-proxy").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            socks = self._open | self._doomed
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(client)
                if self._cut.is_set():
                    self._doomed.add(client)  # held, never forwarded
                    continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                self._close(client)
                continue
            with self._lock:
                self._open.add(server)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self._cut.is_set() or sock in self._doomed:
                        self.dropped_bytes += len(data)
                        with self._lock:
                            self._doomed |= {a, b}
                        continue
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            self._close(a)
            self._close(b)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()


@contextlib.contextmanager
def partition_proxy(server_url: str) -> Iterator[PartitionProxy]:
    with PartitionProxy.to_server(server_url) as proxy:
        yield proxy
