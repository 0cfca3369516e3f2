"""The fleet (app.fleet): work for many Kommunen in spawned worker processes, typed results
in the order asked for, progress from the workers, and a worker that dies still reported."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from basisit.app import fleet
from basisit.errors import ValidationFailed


@dataclass(frozen=True)
class Done:
    ags: str
    ok: bool
    note: str


def _work(ags: str) -> Done:
    """Module level, so that the spawned workers can import it."""
    fleet.report_to_parent(ags, "step", f"working on {ags}")
    if ags == "10041100":
        os._exit(9)  # the worker process dies without a word
    return Done(ags, True, f"pid {os.getpid()}")


def test_results_come_back_typed_in_order_and_a_dead_worker_is_reported() -> None:
    # One worker at a time and the dying one last: a dead worker breaks the pool, and every
    # Kommune still waiting would be reported dead with it.
    kommunen = ["10046118", "10046111", "10041100"]
    seen: list[tuple[str, str, str]] = []
    arrived: list[str] = []
    results = fleet.run_each(
        _work, kommunen, parallel=1, progress=lambda *event: seen.append(event),
        on_result=lambda r: arrived.append(r.ags),
        failed=lambda ags, error: Done(ags, False, error),
    )  # fmt: skip
    assert [r.ags for r in results] == kommunen
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].note.startswith("worker died")
    assert sorted(arrived) == sorted(kommunen)
    assert ("10046118", "step", "working on 10046118") in seen
    assert all(int(r.note.split()[1]) != os.getpid() for r in results if r.ok)


def test_parallel_below_one_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="--parallel must be at least 1"):
        fleet.run_each(_work, ["10046118"], parallel=0, failed=lambda a, e: Done(a, False, e))
