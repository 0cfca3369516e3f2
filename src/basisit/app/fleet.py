"""Many Kommunen at once: one stack operation per worker process, `parallel` at a time.

Stacks of different Kommunen share nothing but the allocation record (file-locked), so they
run side by side safely. Each worker reports progress through a queue the parent drains; a
failure of one Kommune never stops the others, and every result comes back typed (a stack
operation's `Result`, ok False with the error when it failed); renderers turn them into
tables or JSON.
"""

from __future__ import annotations

import functools
import multiprocessing
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from basisit import runlog
from basisit.errors import BasisItError, ValidationFailed
from basisit.provision.events import Progress
from basisit.provision.operations import Result

OPERATIONS = ("plan", "deploy", "drift")

_queue: Any = None


class _OfKommune(Protocol):
    @property
    def ags(self) -> str: ...


T = TypeVar("T", bound=_OfKommune)


@dataclass(frozen=True)
class Options:
    """What a fleet's stack operations need besides the AGS (picklable for the workers)."""

    target: str = ""
    actor: str = ""
    desired_state: str | None = None  # a file or folder; None: the request database
    refresh: bool = True


def _init_worker(q: Any, logfile: str | None = None) -> None:
    global _queue
    _queue = q
    if logfile:
        runlog.attach(Path(logfile))  # the worker's records go to the parent's run log


def report_to_parent(ags: str, kind: str, text: str) -> None:
    """Progress from inside a worker, drained and shown by the parent."""
    if _queue is not None:
        _queue.put((ags, kind, text))


def _work(operation: str, ags: str, options: Options) -> Result:
    """Runs in a worker process: one operation on one Kommune, never raises."""
    from basisit.app import deploy as deploying
    from basisit.app.sources import Source
    from basisit.provision import operations

    path = options.desired_state
    source = Source(Path(path) if path else None)
    try:
        if operation == "plan":
            result = deploying.plan(ags, source, target=options.target, progress=report_to_parent)
        elif operation == "deploy":
            result = deploying.deploy(
                ags,
                source,
                target=options.target,
                actor=options.actor,
                refresh=options.refresh,
                progress=report_to_parent,
            )
        elif operation == "drift":
            result = operations.drift(ags, progress=report_to_parent)
        else:
            raise ValueError(f"unknown fleet operation {operation!r}")
        return result
    except BasisItError as exc:
        return Result(ags, operation, ok=False, error=str(exc))
    except Exception as exc:  # a bug must not take the whole fleet down
        return Result(ags, operation, ok=False, error=f"{type(exc).__name__}: {exc}")


def run(
    operation: str,
    kommunen: list[str],
    *,
    options: Options,
    parallel: int,
    progress: Progress | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run `operation` for every AGS in `kommunen`, at most `parallel` at a time."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown fleet operation {operation!r}")
    return run_each(
        functools.partial(_work, operation, options=options),
        kommunen,
        parallel=parallel,
        progress=progress,
        on_result=on_result,
        failed=lambda ags, error: Result(ags, operation, ok=False, error=error),
    )


def run_each(
    work: Callable[[str], T],
    kommunen: list[str],
    *,
    parallel: int,
    failed: Callable[[str, str], T],
    progress: Progress | None = None,
    on_result: Callable[[T], None] | None = None,
) -> list[T]:
    """`work(ags)` for every AGS, each in a spawned worker process, `parallel` at a time.

    `work` must be picklable (a module-level function or a partial of one) and never raise;
    it reports progress with report_to_parent. A worker that dies still yields a result:
    `failed(ags, error)`. Results come back in the order of `kommunen`.
    """
    if parallel < 1:
        raise ValidationFailed(f"--parallel must be at least 1, got {parallel}")
    ctx = multiprocessing.get_context("spawn")
    events: Any = ctx.Queue()
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set() or not events.empty():
            try:
                ags, kind, text = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if progress is not None:
                progress(ags, kind, text)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    results: list[T] = []
    try:
        with ProcessPoolExecutor(
            max_workers=min(parallel, max(1, len(kommunen))),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(events, str(runlog.current() or "") or None),
        ) as pool:
            futures = {pool.submit(work, ags): ags for ags in kommunen}
            for future in as_completed(futures):
                try:
                    res = future.result()
                except Exception as exc:  # the worker process itself died
                    res = failed(futures[future], f"worker died: {exc}")
                results.append(res)
                if on_result is not None:
                    on_result(res)
    finally:
        stop.set()
        reader.join(timeout=5)
    order = {ags: i for i, ags in enumerate(kommunen)}
    return sorted(results, key=lambda r: order.get(r.ags, 0))
