"""Schutzbedarf levels (BSI protection requirement categories) and their order: the one home
of the levels (the catalog's model and the request rules use them from here)."""

from __future__ import annotations

from typing import Literal, get_args

Schutzbedarf = Literal["normal", "hoch", "sehr hoch"]
LEVELS: tuple[str, ...] = get_args(Schutzbedarf)
# From this level on a service needs a backup service of the same Kommune at its level.
BACKUP_FROM = "hoch"


def rank(level: str) -> int:
    try:
        return LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown Schutzbedarf {level!r} (allowed: {', '.join(LEVELS)})") from None


def needs_backup(level: str) -> bool:
    return rank(level) >= rank(BACKUP_FROM)
