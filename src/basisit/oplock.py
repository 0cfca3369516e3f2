"""One operation per Kommune at a time: the lock every mutating step takes.

<data_dir>/provision/locks/<ags>.lock (the folder keeps its first name, so older data dirs and
their tools stay valid), taken with flock(2) by plan, deploy, drift, destroy and configure, so
a deploy and a configure of the same Kommune never run together. The kernel drops the lock the
moment its holder dies; the file holds the holder's pid, host, operation and start time for
the message a second caller gets. A file that still names a holder although nobody holds the
flock was left by a killed run: *stale* (provisioning then recovers the stack).
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from basisit import paths
from basisit.errors import StackLocked
from basisit.files import LockBusy, is_locked, lock_fd, read_lock_file, unlock_fd


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    operation: str
    started_at: str
    user: str = ""

    def describe(self) -> str:
        return f"{self.operation} by pid {self.pid} on {self.host} since {self.started_at}"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        if not text:
            return None
        try:
            return cls(**json.loads(text))
        except (json.JSONDecodeError, TypeError):
            return cls(0, "?", "unknown operation", "?")


def pid_alive(pid: int) -> bool:
    """A running process; a zombie (killed, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def this_host() -> str:
    return socket.gethostname()


def locks_dir() -> Path:
    path = paths.data_dir() / "provision" / "locks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def lock_path(ags: str) -> Path:
    return locks_dir() / f"{ags}.lock"


def busy(ags: str) -> bool:
    """Does a live process hold the Kommune's lock right now?"""
    path = lock_path(ags)
    return path.is_file() and path.stat().st_size > 0 and is_locked(path)


class KommuneLock:
    """The operation lock of one AGS; use as a context manager."""

    def __init__(self, ags: str, operation: str) -> None:
        self.ags = ags
        self.operation = operation
        self.path = lock_path(ags)
        self._fd: int | None = None
        self.stale: Holder | None = None  # set when a killed run's lock was found

    def acquire(self) -> KommuneLock:
        try:
            fd = lock_fd(self.path, wait=0)
        except LockBusy as exc:
            holder = Holder.parse(exc.holder)
            who = holder.describe() if holder else "another process"
            raise StackLocked(
                f"AGS {self.ags} is busy: {who} (lock {self.path}); "
                "wait for it to finish, then try again"
            ) from None
        previous = Holder.parse(read_lock_file(fd))
        if previous is not None:
            if previous.host != this_host() and previous.pid:
                unlock_fd(fd)
                raise StackLocked(
                    f"AGS {self.ags}: the lock names {previous.describe()}, another machine; "
                    f"if that run is gone, remove {self.path} and try again"
                )
            # Nobody holds the flock, yet the file names a holder: that run was killed.
            self.stale = previous
        me = Holder(
            pid=os.getpid(),
            host=this_host(),
            operation=self.operation,
            started_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            user=os.environ.get("USER", ""),
        )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(asdict(me)).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        # An empty file means "released cleanly"; only a killed run leaves its name behind.
        os.ftruncate(self._fd, 0)
        unlock_fd(self._fd)
        self._fd = None

    def __enter__(self) -> KommuneLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
