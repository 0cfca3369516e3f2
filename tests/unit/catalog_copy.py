"""A private copy of the project's catalog for tests that break it on purpose."""

from __future__ import annotations

import shutil
from pathlib import Path

from basisit import paths


def catalog_copy(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(paths.catalog_dir(), target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first `old` in the file; fails when the file no longer holds it."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


FUNDING = "\n# Start-up funding"


def without_funding(catalog: Path) -> None:
    """Drop billing.yaml's funding programmes (the last section): the hand-worked months of
    the allocation and invoice tests are figures before any subsidy."""
    path = catalog / "billing.yaml"
    text = path.read_text(encoding="utf-8")
    assert FUNDING in text, f"billing.yaml no longer has {FUNDING!r}"
    path.write_text(text.split(FUNDING)[0] + "\n", encoding="utf-8")
