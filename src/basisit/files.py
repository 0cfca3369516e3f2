"""The two file primitives every step uses: an atomic replace and an flock(2) lock.

`atomic_write` writes beside the target and renames over it, so a reader never sees half a
file and a crash leaves the old one. `flock` takes the kernel's advisory lock on a lock file;
the kernel drops it the moment its holder dies, so a killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# How often a waiting flock tries again.
_POLL_S = 0.05


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644) -> Path:
    """Replace `path` with `data` in one step (mode `mode`, fsync'd before the rename).

    The temporary file is `.<name>.<random>.tmp` in the same folder: a glob such as `*.json`
    never matches it, and the rename stays on one file system. The folder must exist.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def create_exclusive(path: Path, data: bytes, *, mode: int = 0o600) -> bool:
    """Write `data` to `path` unless it exists, atomically: the first of racing writers wins.

    Returns False (and keeps the existing file) when the path was already there.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        try:
            os.link(tmp, path)  # fails if the file exists
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class LockBusy(Exception):
    """Another process holds the lock; `holder` is what the lock file says about it."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path} is locked ({holder or 'unknown holder'})")


def read_lock_file(fd: int) -> str:
    """The text a lock file holds (its holder's description), stripped."""
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode(errors="replace").strip()


def lock_fd(path: Path, *, shared: bool = False, wait: float | None = None) -> int:
    """Open `path` (created 0600) and take its flock; returns the descriptor, which holds the
    lock until it is closed (or unlock_fd).

    `wait` None blocks until the lock is free; 0 refuses at once; a positive number polls
    that many seconds. A refusal raises LockBusy naming what the file says of its holder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    kind = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        if wait is None:
            fcntl.flock(fd, kind)
            return fd
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, kind | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(path, read_lock_file(fd)) from None
                time.sleep(_POLL_S)
    except BaseException:
        os.close(fd)
        raise


def unlock_fd(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextlib.contextmanager
def flock(path: Path, *, shared: bool = False, wait: float | None = None) -> Iterator[int]:
    """Hold the flock of `path` for the block (see lock_fd); yields the open descriptor."""
    fd = lock_fd(path, shared=shared, wait=wait)
    try:
        yield fd
    finally:
        unlock_fd(fd)


def is_locked(path: Path) -> bool:
    """Does some process hold the flock of `path` right now? (False when there is no file.)"""
    if not path.is_file():
        return False
    try:
        with flock(path, shared=True, wait=0):
            return False
    except LockBusy:
        return True
