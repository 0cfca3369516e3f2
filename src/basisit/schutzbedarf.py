"""Schutzbedarf levels (BSI protection requirement categories) and their order."""

from __future__ import annotations

LEVELS: tuple[str, ...] = ("normal", "hoch", "sehr hoch")


def rank(level: str) -> int:
    try:
        return LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown Schutzbedarf {level!r} (allowed: {', '.join(LEVELS)})") from None


def needs_backup(level: str) -> bool:
    return rank(level) >= rank("hoch")
