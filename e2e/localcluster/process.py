"""Background processes recorded in pid files, each in its own process group.

A pid file holds the pid and the executable it was started from, so that a
later `down` (from another Python process) signals only processes it started,
even if the pid has been reused since.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, ..."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our own child (no-op otherwise)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int) -> bool:
    _reap(pid)
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[2] == str(pgid) and pid_alive(int(entry.name)):
            members.append(int(entry.name))
    return members


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


@dataclass(frozen=True)
class Component:
    """One managed process: its name, command line, log and pid files."""

    name: str
    argv: tuple[str, ...]
    log: Path
    pidfile: Path

    def start(self, env: dict[str, str] | None = None) -> int:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, signalled as a whole
                env=env,
                close_fds=True,
            )
        self.pidfile.write_text(f"{proc.pid}\n{self.argv[0]}\n")
        # Popen returns mid-execve; /proc/PID/cmdline can still be empty for a moment.
        deadline = time.monotonic() + 2
        while not cmdline(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        return proc.pid

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def read_pidfile(pidfile: Path) -> int | None:
    """The recorded pid if that process is alive and still runs the recorded binary."""
    try:
        pid_line, exe, *_ = [*pidfile.read_text().splitlines(), "", ""]
        pid = int(pid_line)
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    cmd = cmdline(pid)
    for _ in range(20):  # empty while the process is between fork and exec
        if cmd or not pid_alive(pid):
            break
        time.sleep(0.005)
        cmd = cmdline(pid)
    if not cmd or (exe and cmd[0] != exe):
        return None  # the pid now belongs to something else
    return pid


def stop_pidfile(pidfile: Path, timeout: float = 15.0) -> list[int]:
    """SIGTERM the recorded process group, wait for it to exit, SIGKILL if it lingers.

    Returns the pids that were signalled (for wait_reaped)."""
    pid = read_pidfile(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return []
    pgid = pid  # start_new_session made it its group's leader
    seen = {pid, *group_members(pgid)}
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            members = group_members(pgid)
            seen.update(members)
            if not pid_alive(pid) and not members:
                pidfile.unlink(missing_ok=True)
                return sorted(seen)
            time.sleep(0.02)
    raise RuntimeError(f"{pidfile.stem} (pid {pid}) did not exit after SIGKILL")


def wait_reaped(pids: list[int], timeout: float = 5.0) -> bool:
    """Wait until exited processes are gone from /proc, not even zombies.

    Our own children are reaped here; orphans are reaped by init, which may take a
    moment. Returns False if some are still zombies at the deadline (harmless)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if _stat_fields(p) is not None and not pid_alive(p)]
        if not left:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def signal_group(pidfile: Path, sig: signal.Signals) -> int:
    """Send `sig` to the process group recorded in `pidfile` (e.g. SIGSTOP to pause a
    component, SIGCONT to resume it); returns the group's pid. Raises RuntimeError when
    the recorded process is not running."""
    pid = read_pidfile(pidfile)
    if pid is None:
        raise RuntimeError(f"{pidfile.stem} is not running")
    os.killpg(pid, sig)  # start_new_session made it its group's leader
    return pid
