"""What every command group shares: consoles, error handling, output formats."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

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


class ErrorHandlingGroup(TyperGroup):
    """Turns the suite's errors into one clear line and its exit code, never a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's own click Context
        try:
            return super().invoke(ctx)
        except BasisItError as exc:
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            ctx.exit(exc.exit_code)


def group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, cls=ErrorHandlingGroup)


ACTOR_OPTION = typer.Option(
    None, "--actor", help="Who does this (default: $BASISIT_ACTOR or the login name)"
)
