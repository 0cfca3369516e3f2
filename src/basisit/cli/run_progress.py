"""Renders a configuration run's events: a live row per host and a line per change or failure.

The driver (basisit.configure.runner) reports plain RunEvents; this is the CLI's view of them.
Texts are shown literally (they carry what users typed), never as markup.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn
from rich.table import Table

from basisit.configure.events import RunEvent
from basisit.configure.runner import RunResult


class LiveRun:
    """The CLI's reporter of configure runs.

    `with LiveRun(console) as report: configure(..., report=report)`.

    With live=False (output to a pipe or a file) the rows are left out and the lines stay.
    """

    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[host]:<16}"),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        )
        self.rows: dict[str, TaskID] = {}

    def __enter__(self) -> LiveRun:
        if self.live:
            self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live:
            self.progress.stop()

    def _line(self, text: str) -> None:
        self.progress.console.print(text, highlight=False)

    def _row(self, event: RunEvent) -> None:
        if not self.live:
            return
        if event.host not in self.rows:
            self.rows[event.host] = self.progress.add_task("", host=event.host, total=None)
        counts = f"ok={event.ok} changed={event.changed}"
        if event.failed or event.unreachable:
            counts += f" [red]failed={event.failed} unreachable={event.unreachable}[/]"
        self.progress.update(self.rows[event.host], description=f"{counts}  {escape(event.task)}")

    def __call__(self, event: RunEvent) -> None:
        host, task, text = escape(event.host), escape(event.task), escape(event.text)
        if event.kind == "start":
            self._line(text)
            for name in event.hosts:
                if self.live and name not in self.rows:
                    self.rows[name] = self.progress.add_task("waiting", host=name, total=None)
        elif event.kind == "play":
            self._line(f"[cyan]▶ {text}[/]")
        elif event.kind == "task":
            self._row(event)
        elif event.kind == "changed":
            self._line(f"  [yellow]changed[/]     {host:<16} {task}")
        elif event.kind == "failed":
            self._line(f"  [red]failed[/]      {host:<16} {task}: {text}")
        elif event.kind == "unreachable":
            self._line(f"  [red]unreachable[/] {host:<16} {task}: {text}")


def summary_table(result: RunResult) -> Table:
    table = Table(title=f"Configuration of AGS {result.ags} ({result.duration_s:.0f} s)")
    for col in ("host", "ok", "changed", "failed", "unreachable", "skipped", "status"):
        table.add_column(col, justify="left" if col in ("host", "status") else "right")
    for name, h in sorted(result.hosts.items()):
        colour = {"ok": "green", "failed": "red", "unreachable": "red"}[h.status]
        table.add_row(
            escape(name),
            str(h.ok),
            str(h.changed),
            str(h.failed),
            str(h.unreachable),
            str(h.skipped),
            f"[{colour}]{h.status}[/]",
        )
    return table
