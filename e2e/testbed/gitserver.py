"""A real Git server on 127.0.0.1: `git http-backend` (smart HTTP, as git ships it) behind
a small threaded HTTP server with basic auth.

`GitServer(root, users).start()` serves every bare repository under `root` at
`http://127.0.0.1:<port>/<name>.git`; reads and pushes need a user of `users`.
`seed()` makes a bare repository from a directory of files (one commit on `main`), and
`log()` / `show()` read a branch back with the git binary, the way a reviewer would.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from testbed.modelserver import free_port

GIT = shutil.which("git") or "git"
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "GIT_AUTHOR_NAME": "Platform Team",
    "GIT_AUTHOR_EMAIL": "platform@example.com",
    "GIT_COMMITTER_NAME": "Platform Team",
    "GIT_COMMITTER_EMAIL": "platform@example.com",
}


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        [GIT, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _backend() -> str:
    exec_path = git("--exec-path").strip()
    return str(Path(exec_path) / "git-http-backend")


@dataclass
class GitServer:
    """`git http-backend` for the bare repositories under `root`, with basic auth."""

    root: Path
    users: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    """(method, path, status) of every request, for tests."""

    def start(self) -> GitServer:
        self.port = free_port()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._cgi()

            def do_POST(self) -> None:
                self._cgi()

            def _cgi(self) -> None:
                user = server._user(self.headers.get("Authorization"))
                if user is None:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    server.requests.append((self.command, self.path, 401))
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    **os.environ,
                    **GIT_ENV,
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REMOTE_USER": user,
                    "REMOTE_ADDR": "127.0.0.1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "GATEWAY_INTERFACE": "CGI/1.1",
                }
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                if self.headers.get("Git-Protocol"):
                    env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
                done = subprocess.run(
                    [_backend()], input=body, env=env, capture_output=True, check=False
                )
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                if not _ and b"\n\n" in done.stdout:
                    head, _, payload = done.stdout.partition(b"\n\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").splitlines():
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                server.requests.append((self.command, self.path, status))

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _user(self, header: str | None) -> str | None:
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if self.users.get(user) == password else None

    def url(self, repository: str) -> str:
        return f"http://127.0.0.1:{self.port}/{repository}.git"

    def seed(self, repository: str, files: dict[str, str]) -> Path:
        """A bare repository `<repository>.git` whose `main` has `files` in one commit."""
        bare = self.root / f"{repository}.git"
        git("init", "--bare", "--initial-branch=main", str(bare))
        git("config", "http.receivepack", "true", cwd=bare)
        work = self.root / f".{repository}-seed"
        git("init", "--initial-branch=main", str(work))
        for name, text in files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", "Add the model manifests", cwd=work)
        git("push", "-q", str(bare), "main", cwd=work)
        shutil.rmtree(work)
        return bare

    def commit(self, repository: str, path: str, text: str, message: str) -> str:
        """A user's commit of `path` on main (as a person pushing to the repo would)."""
        work = self.root / f".{repository}-work"
        if work.exists():
            shutil.rmtree(work)
        git("clone", "-q", str(self.root / f"{repository}.git"), str(work))
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
        git("add", path, cwd=work)
        git("commit", "-q", "-m", message, cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        sha = git("rev-parse", "HEAD", cwd=work).strip()
        shutil.rmtree(work)
        return sha

    def log(self, repository: str, branch: str = "main") -> list[dict[str, str]]:
        """The branch's commits, newest first: sha, author, subject and the full message."""
        bare = self.root / f"{repository}.git"
        out = git("log", "--format=%H%x1f%an <%ae>%x1f%s%x1f%B%x1e", branch, cwd=bare)
        commits = []
        for record in out.split("\x1e"):
            if not record.strip():
                continue
            sha, author, subject, message = record.strip("\n").split("\x1f")
            commits.append({"sha": sha, "author": author, "subject": subject, "message": message})
        return commits

    def show(self, repository: str, path: str, branch: str = "main") -> str:
        return git("show", f"{branch}:{path}", cwd=self.root / f"{repository}.git")
