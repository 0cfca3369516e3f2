"""Showing what people typed, literally.

Reasons, comments, names, addresses, parameters and error messages come from users. Rich reads
square brackets as markup (`Freigabe fehlt [/srv/samba]` crashed `request show`, `[bold]`
restyled a reason) and passes escape sequences to the terminal (`\\x1b]0;...` changed its
title). Everything the CLI shows that it did not write itself goes through `literal()`
(basisit.text: plain text, control characters made visible) or, inside the CLI's own markup,
`esc()`. Tables are built with this module's `Table`, whose string cells are never read as
markup; `plain()` makes a styled cell.
"""

from __future__ import annotations

from typing import Any

from rich import table as rich_table
from rich.markup import escape
from rich.text import Text

from basisit.text import literal

__all__ = ["Table", "esc", "literal", "plain"]


def esc(value: object) -> str:
    """For a value inside the CLI's own markup: literal, with brackets escaped."""
    return escape(literal(value))


def plain(value: object, style: str | None = None) -> Text:
    """A Rich Text that is never parsed as markup."""
    return Text(literal(value), style=style or "")


class Table(rich_table.Table):
    """A Rich table whose string cells are shown literally; pass a Text for styled cells."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        cells = [plain(c) if isinstance(c, str) else c for c in renderables]
        super().add_row(*cells, **kwargs)
