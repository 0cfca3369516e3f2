"""What every command group shares: consoles, error handling, output formats."""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import StrEnum
from typing import Any

import typer
import yaml
from rich.console import Console
from typer.core import TyperGroup

from basisit import runlog
from basisit.cli.render import esc
from basisit.errors import BasisItError

# Wide enough for tables when output goes to a file or CI log instead of a terminal.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    yaml = "yaml"
    json = "json"


def emit(data: Any, fmt: Format) -> None:
    """Machine-readable output goes to stdout without Rich markup."""
    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


log = logging.getLogger("basisit.cli")


def _is_click_flow(exc: Exception) -> bool:
    """Exit, Abort and usage errors are how click ends a command; they are not crashes."""
    return type(exc).__module__.split(".")[0] in ("click", "typer")


class ErrorHandlingGroup(TyperGroup):
    """Turns the suite's errors into one clear line and its exit code, never a traceback.

    The outermost group also keeps the run's log file (basisit.runlog): an unexpected error
    is one line naming that file, which holds the traceback.
    """

    def invoke(self, ctx: Any) -> Any:  # typer's own click Context
        if ctx.parent is not None:
            return self._invoke(ctx)
        # The subcommand's name (typer's click keeps it in _protected_args); never the
        # arguments, which may hold values worth keeping out of a file name.
        first = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
        words = [*first, *ctx.args]
        command = next((w for w in words if not w.startswith("-")), "basisit")
        logfile = runlog.start(command)
        log.info("basisit %s (pid %d)", command, os.getpid())
        try:
            return self._invoke(ctx)
        except Exception as exc:
            if _is_click_flow(exc):
                raise
            log.exception("unexpected error")
            err_console.print(
                f"[bold red]error:[/] {esc(type(exc).__name__)}: {esc(str(exc))} "
                f"(a bug; the traceback is in {logfile})",
                highlight=False,
                soft_wrap=True,
            )
            ctx.exit(1)
        finally:
            runlog.stop()

    def _invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BasisItError as exc:
            log.info("refused: %s", exc, exc_info=True)
            err_console.print(
                f"[bold red]error:[/] {esc(str(exc))}", highlight=False, soft_wrap=True
            )
            ctx.exit(exc.exit_code)


def group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, cls=ErrorHandlingGroup)


ACTOR_OPTION = typer.Option(
    None, "--actor", help="Who does this (default: $BASISIT_ACTOR or the login name)"
)
