"""What a playbook run reports while it runs: plain, scrubbed events for a renderer.

The driver never prints. The CLI turns these events into live rows and lines
(basisit.cli.run_progress), a portal worker into its job log; both get the same text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

EventKind = Literal["start", "play", "task", "changed", "failed", "unreachable"]


@dataclass(frozen=True)
class RunEvent:
    """One thing that happened in a run.

    start        the run begins (text: what is configured, hosts: the inventory's hosts)
    play         a play begins (text: its name)
    task         a host starts a task, or its counts changed (task: the task's name)
    changed      a task changed something on a host
    failed       a task failed on a host (text: the scrubbed message)
    unreachable  a host cannot be reached (text: the scrubbed message)
    Texts are what users typed or Ansible printed, with every known secret masked: show them
    literally, never as markup.
    """

    kind: EventKind
    ags: str
    host: str = ""
    task: str = ""
    text: str = ""
    hosts: tuple[str, ...] = ()
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0


Reporter = Callable[[RunEvent], None]


def ignore(event: RunEvent) -> None:
    """The reporter of a run nobody watches (a worker process whose parent shows progress)."""
    return None
