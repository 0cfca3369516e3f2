"""Background processes without systemd: a pid file, a log file, a readiness check.

The host has no systemd (monitoring/systemd/ holds the units for a production host), so
`basisit monitoring up` starts Prometheus and the exporter itself, each in its own session
(a closed terminal does not stop it), with `<name>.pid` and `<name>.log` in the monitoring
folder of the data directory. A pid file is trusted only while that process still runs the
command that was started (its /proc cmdline holds the marker), so a reused pid is never
signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from basisit.errors import BasisItError, Conflict
from basisit.files import atomic_write

STOP_WAIT_S = 10.0
_POLL_S = 0.1


class StartFailed(BasisItError):
    """A process did not come up; the message quotes the end of its log."""


@dataclass(frozen=True)
class Managed:
    name: str  # "prometheus", "exporter"
    folder: Path
    marker: str  # a string of its command line that identifies it (e.g. its config path)

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of the running process, None when it does not run (a stale file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _runs(pid, self.marker):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, command: list[str], *, env: dict[str, str] | None = None) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} start: {command}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # not stopped with the terminal that started it
                close_fds=True,
            )
        atomic_write(self.pid_file, f"{process.pid}\n")
        _children[process.pid] = process
        return process.pid

    def wait_ready(self, pid: int, check: Callable[[], bool], timeout: float) -> None:
        """Until `check()` is true; StartFailed when the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                raise StartFailed(f"{self.name} exited at start: {self.log_tail()}")
            if check():
                return
            time.sleep(_POLL_S)
        raise StartFailed(f"{self.name} not ready after {timeout:.0f} s: {self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_WAIT_S; the pid that was stopped, or None."""
        pid = self.pid()
        if pid is None:
            return None
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, STOP_WAIT_S):
            _signal(pid, signal.SIGKILL)
            _wait_gone(pid, STOP_WAIT_S)
        self.pid_file.unlink(missing_ok=True)
        return pid

    def reload(self) -> None:
        pid = self.pid()
        if pid is not None:
            _signal(pid, signal.SIGHUP)

    def log_tail(self, lines: int = 6) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no log at {self.log_file})"
        tail = " | ".join(line.strip() for line in text[-lines:] if line.strip())
        return f"{tail} (log: {self.log_file})"


# Children started by this process, so that their exit status is collected (no zombies
# while a test or the CLI waits for them to stop).
_children: dict[int, subprocess.Popen[bytes]] = {}


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is gone for every purpose here.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _runs(pid: int, marker: str) -> bool:
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            _children.pop(pid, None)
            return True
        time.sleep(_POLL_S)
    return False


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Can a server bind the port now? (SO_REUSEADDR as servers use it, so a port in
    TIME_WAIT after a stop counts as free.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free(ports: dict[str, int], describe: Callable[[int], str] | None = None) -> None:
    """Conflict naming every port that is taken (and, with `describe`, who holds it)."""
    taken = [(what, port) for what, port in ports.items() if not port_free(port)]
    if taken:
        named = [
            f"{what} port {port} on 127.0.0.1 is taken{describe(port) if describe else ''}"
            for what, port in taken
        ]
        raise Conflict(
            "; ".join(named) + ": nothing was started (free the port, or choose another "
            "with --prometheus-port / --exporter-port)"
        )
