"""A run dir in use is locked: ``run.lock`` names the process that runs in it, so that no second
process trains into it (``resume=auto`` skips a locked run; ``resume=<dir>`` and a new run in a
locked dir are refused: ``training.resume``).

A lock is live while its process is. On this host: its pid runs and started when the lock says
(a pid reused after a restart is not the holder). From another host (a shared file system): while
the holder refreshes the file's time, every ``HEARTBEAT_S`` seconds. Any other lock is stale and
the next run takes it over. A run releases its lock when it ends, also on an error or a signal
(``lifecycle.session``); only SIGKILL leaves one behind, and its pid is then gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftlab.utils.files import write_json

LOCK_FILE = "run.lock"
HEARTBEAT_S = 60.0
STALE_AFTER_S = 10 * HEARTBEAT_S  # from another host: a lock this long without a heartbeat is stale


class RunInUse(Exception):  # noqa: N818 - a state, like FileExistsError
    """``run_dir`` is locked by a live process (``holder``: its host, pid, start, owner)."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]):
        self.holder = holder
        super().__init__(
            f"in use by pid {holder.get('pid')} on {holder.get('host')} since "
            f"{holder.get('since')} ({Path(run_dir) / LOCK_FILE})"
        )


def holder(run_dir: Path) -> dict[str, Any] | None:
    """The live holder of ``run_dir``'s lock, or None (no lock, or a stale one)."""
    path = Path(run_dir) / LOCK_FILE
    try:
        info = json.loads(path.read_text())
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):  # none, or not a lock sftlab wrote: nobody holds it
        return None
    if not isinstance(info, dict):
        return None
    if info.get("host") == socket.gethostname():
        return info if _running(info.get("pid"), info.get("started")) else None
    return info if age < STALE_AFTER_S else None


def acquire(run_dir: Path, owner: str | Path) -> RunLock:
    """Lock ``run_dir`` for this process, or raise ``RunInUse``. ``owner`` is the dir this process
    was started with (``output_dir``): its other DDP ranks, started with the same one, know the
    lock is their rank 0's (``is_owner``)."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(run_dir):  # two runs starting at once: one takes it, the other sees it taken
        busy = holder(run_dir)
        if busy is not None:
            raise RunInUse(run_dir, busy)
        write_json(
            run_dir / LOCK_FILE,
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": _started(os.getpid()),
                "owner": os.path.abspath(owner),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
    return RunLock(run_dir, created)


def is_owner(info: dict[str, Any], owner: str | Path) -> bool:
    """Whether a lock was taken by the rank 0 of a run started with ``owner`` as its dir."""
    return info.get("owner") == os.path.abspath(owner)


class RunLock:
    """This process's lock on a run dir, refreshed in the background until ``release()``."""

    def __init__(self, run_dir: Path, created: bool):
        self.path = run_dir / LOCK_FILE
        self.created = created
        """Taking the lock made the run dir: releasing it removes the dir if it is still empty."""
        self._stop = threading.Event()
        threading.Thread(target=self._heartbeat, name="sftlab-run-lock", daemon=True).start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        """Remove the lock (when it is still this process's) and the dir taking it made, if empty."""
        self._stop.set()
        try:
            mine = json.loads(self.path.read_text())
        except (OSError, ValueError):
            mine = {}
        if mine.get("pid") == os.getpid() and mine.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)
        if self.created:
            with contextlib.suppress(OSError):  # not empty: the run wrote something, it stays
                self.path.parent.rmdir()


def _running(pid: Any, started: Any) -> bool:
    """Whether process ``pid`` runs on this host and is the one that started at ``started``."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        pass
    state = _stat(pid)
    if state is None:  # no /proc (macOS): the pid runs, that is all there is to know
        return True
    if state[0] in ("Z", "X"):  # exited, not yet reaped by its parent
        return False
    return started is None or state[1] == started


def _started(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot), or None where there is no /proc."""
    state = _stat(pid)
    return None if state is None else state[1]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of ``pid`` from /proc/<pid>/stat, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])  # fields 3 and 22 of proc(5); the name may hold spaces
    except (OSError, IndexError, ValueError):
        return None


@contextlib.contextmanager
def _exclusive(run_dir: Path) -> Iterator[None]:
    """One process at a time reads and writes the lock of ``run_dir`` (a flock on the dir itself;
    on a file system without flock, best effort without)."""
    try:
        fd = os.open(run_dir, os.O_RDONLY)
    except OSError:
        fd = None
    try:
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the flock
