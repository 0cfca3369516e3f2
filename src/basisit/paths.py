"""Where the suite finds its project files and keeps its data."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout holding catalog/, roles/, stacks/ (the package lives beside them)."""
    env = os.environ.get("BASISIT_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "catalog").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    raise RuntimeError(
        "cannot find the project root (a folder with catalog/ and pyproject.toml); "
        "set BASISIT_PROJECT_ROOT"
    )


def data_dir() -> Path:
    """Database, stack state, outputs, secrets: never inside git.

    BASISIT_DATA_DIR wins; the default is .data/ in the checkout (git-ignored).
    """
    env = os.environ.get("BASISIT_DATA_DIR")
    path = Path(env) if env else project_root() / ".data"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def cache_dir() -> Path:
    """What scripts/bootstrap.sh builds or downloads (scripts/env.sh: BASISIT_CACHE, else
    $XDG_CACHE_HOME/basisit, else ~/.cache/basisit). Not created here: a reader of the cache
    must find it filled, not an empty folder."""
    env = os.environ.get("BASISIT_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "basisit"


def catalog_dir() -> Path:
    return Path(os.environ.get("BASISIT_CATALOG_DIR") or project_root() / "catalog")


def inventories_dir() -> Path:
    return project_root() / "inventories"


def outputs_dir() -> Path:
    path = data_dir() / "outputs"
    path.mkdir(parents=True, exist_ok=True)
    return path
