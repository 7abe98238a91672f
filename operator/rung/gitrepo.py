"""Writing a manifest change to a Git repository over smart HTTP (dulwich, no git binary).

`GitWriter.write()` fetches the branch's head (shallow, into memory), lets a pure function
edit the manifest's text, commits the result on top of the head and pushes it. The push
is a compare-and-swap: when the branch moved since the fetch (someone else pushed), the
update is refused and the whole write is tried again on a fresh fetch, so a concurrent
commit is never overwritten. Credentials are HTTP basic auth (a password or a token); no
message this module produces contains them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dulwich.client import HttpGitClient, get_transport_and_path
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import MemoryRepo

log = logging.getLogger(__name__)
ATTEMPTS = 3
"""Writes tried when the branch moves under us (each on a fresh fetch)."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(username={self.username!r}, password=***)"


class GitError(RuntimeError):
    """The write could not be done; the message is fit for a condition."""


class _MovedError(Exception):
    """The branch is not where the fetch left it."""


@dataclass(frozen=True)
class Written:
    commit: str | None
    """The pushed commit, or None when the edit changed nothing."""
    attempts: int


class GitWriter:
    """Writes one file change to one branch of a repository reached over HTTP(S)."""

    def __init__(self, timeout: float = 20.0) -> None:
        self.timeout = timeout

    def write(
        self,
        url: str,
        branch: str,
        path: str,
        edit: Callable[[str], str | None],
        message: str,
        author: str,
        credentials: Credentials | None,
    ) -> Written:
        """Commit `edit(text of path)` on `branch` and push it; retried on a moved branch."""
        secret = credentials.password if credentials else None
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return Written(
                    self._write_once(url, branch, path, edit, message, author, credentials),
                    attempt,
                )
            except _MovedError:
                log.info("%s %s moved during a write; fetching again (%d)", url, branch, attempt)
                continue
            except GitError as error:
                raise GitError(_scrub(str(error), secret)) from None
            except Exception as error:  # dulwich's errors: network, auth, protocol
                raise GitError(_scrub(_describe(error), secret)) from None
        raise GitError(f"{branch} kept moving: {ATTEMPTS} attempts, each on a fresh fetch")

    def _client(self, url: str, credentials: Credentials | None) -> tuple[HttpGitClient, str]:
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            kwargs = {"username": credentials.username, "password": credentials.password}
        client, remote_path = get_transport_and_path(url, **kwargs)
        if not isinstance(client, HttpGitClient):
            raise GitError(f"{url}: only http(s) repositories are supported")
        return client, remote_path

    def _write_once(
        self,
        url: str,
        branch: str,
        path: str,
        edit: Callable[[str], str | None],
        message: str,
        author: str,
        credentials: Credentials | None,
    ) -> str | None:
        client, remote_path = self._client(url, credentials)
        # dulwich types refs and ids as NewTypes of bytes; this module speaks plain bytes.
        git: Any = client
        repo = MemoryRepo()
        ref = f"refs/heads/{branch}".encode()

        def wants(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
            return [refs[ref]] if ref in refs else []

        fetched = git.fetch(remote_path, repo, determine_wants=wants, depth=1)
        head = fetched.refs.get(ref)
        if head is None:
            raise GitError(f"no branch {branch} in {url}")
        commit = repo[head]
        assert isinstance(commit, Commit)
        try:
            _mode, blob_id = tree_lookup_path(repo.__getitem__, commit.tree, path.encode())
        except KeyError:
            raise GitError(f"no file {path} on {branch}") from None
        blob = repo[blob_id]
        assert isinstance(blob, Blob)
        changed = edit(blob.data.decode("utf-8"))
        if changed is None:
            return None
        new_blob = Blob.from_string(changed.encode("utf-8"))
        repo.object_store.add_object(new_blob)
        tree = _replaced(repo, commit.tree, path.encode().split(b"/"), new_blob.id)
        new = Commit()
        new.tree = tree
        new.parents = [head]
        new.author = new.committer = author.encode()
        new.author_time = new.commit_time = int(time.time())
        new.author_timezone = new.commit_timezone = 0
        new.encoding = b"UTF-8"
        new.message = message.encode("utf-8")
        repo.object_store.add_object(new)

        def update(refs: dict[bytes, bytes]) -> dict[bytes, bytes]:
            if refs.get(ref) != head:
                raise _MovedError()
            return {ref: new.id}

        result = git.send_pack(remote_path, update, repo.generate_pack_data)
        status = (result.ref_status or {}).get(ref)
        if status is not None:
            # receive-pack refused the update: most often the ref moved between the
            # advertisement and the update (a concurrent push); try again from a fetch.
            log.info("push of %s to %s refused: %s", branch, url, status)
            raise _MovedError()
        return new.id.decode()


def _replaced(repo: MemoryRepo, tree_id: Any, parts: list[bytes], blob_id: Any) -> Any:
    """The id of `tree_id` with the file at `parts` replaced by `blob_id` (new trees stored)."""
    tree = repo[tree_id]
    assert isinstance(tree, Tree)
    copy = Tree()
    for item in tree.items():
        copy.add(item.path, item.mode, item.sha)
    name = parts[0]
    mode, sha = tree[name]
    if len(parts) == 1:
        copy.add(name, mode, blob_id)
    else:
        copy.add(name, mode, _replaced(repo, sha, parts[1:], blob_id))
    repo.object_store.add_object(copy)
    return copy.id


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:900]


def _scrub(text: str, secret: str | None) -> str:
    """`text` without the secret, should a library have echoed it."""
    if secret:
        text = text.replace(secret, "***")
    return text
