"""The Pulumi CLI the suite drives and the environment it runs in.

The CLI is looked up in this order: BASISIT_PULUMI_BIN_DIR (set by scripts/env.sh), `pulumi`
on PATH, the version bootstrap built under ~/.cache/basisit/pulumi/. State lives in a file
backend under <data_dir>/pulumi/state; nothing talks to Pulumi Cloud.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from basisit import paths
from basisit.files import atomic_write
from basisit.provision.errors import ProvisionError

PROJECT = "basisit"
PLUGIN_SHIM = "pulumi-resource-pulumi-python"


def pulumi_dir() -> Path:
    path = paths.data_dir() / "pulumi"
    path.mkdir(parents=True, exist_ok=True)
    return path


def state_path() -> Path:
    """The file backend's folder, without creating it (a look must leave nothing behind)."""
    return paths.data_dir() / "pulumi" / "state"


def state_dir() -> Path:
    path = state_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def backend_url() -> str:
    return f"file://{state_dir()}"


def workspace_dir(ags: str) -> Path:
    """Pulumi.yaml and Pulumi.<ags>.yaml (with the passphrase's salt) of the Kommune's stack."""
    path = pulumi_dir() / "workspaces" / ags
    path.mkdir(parents=True, exist_ok=True)
    return path


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", path.parent.parent.name)) or (0,)


def find_pulumi_bin_dir() -> Path:
    """The directory holding the `pulumi` binary to use."""
    candidates: list[Path] = []
    env_dir = os.environ.get("BASISIT_PULUMI_BIN_DIR")
    if env_dir:
        candidates.append(Path(env_dir))
    on_path = shutil.which("pulumi")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    cache = Path(
        os.environ.get("BASISIT_PULUMI_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "basisit" / "pulumi"
    )
    selected = cache / "selected-bin-dir"
    if selected.is_file():
        candidates.append(Path(selected.read_text().strip()))
    candidates.extend(
        p.parent for p in sorted(cache.glob("v*/bin/pulumi"), key=_version_key, reverse=True)
    )
    for cand in candidates:
        if (cand / "pulumi").is_file() and os.access(cand / "pulumi", os.X_OK):
            return cand
    raise ProvisionError(
        "the Pulumi CLI was not found (looked at $BASISIT_PULUMI_BIN_DIR, PATH and "
        f"{cache}/v*/bin): run scripts/bootstrap.sh, or `source scripts/env.sh`"
    )


def plugin_shim_dir() -> Path:
    """A `pulumi-resource-pulumi-python` that runs dynamic providers with this very Python.

    The providers of the local target are pickled by reference to stacks.targets.local, so
    the provider process must import the same code: same interpreter, same sys.path.
    """
    shim_dir = pulumi_dir() / "bin"
    shim_dir.mkdir(parents=True, exist_ok=True)
    shim = shim_dir / PLUGIN_SHIM
    text = f'#!/bin/sh\nexec "{sys.executable}" -u -m pulumi.dynamic "$@"\n'
    if not shim.is_file() or shim.read_text() != text:
        # A unique temp name: parallel fleet workers may all get here at once.
        atomic_write(shim, text, mode=0o755)
    return shim_dir


def python_path() -> str:
    """stacks/ and src/ of this checkout first, so provider processes import the same code."""
    root = paths.project_root()
    parts = [str(root), str(root / "src")]
    existing = os.environ.get("PYTHONPATH")
    if existing:
        parts.append(existing)
    return os.pathsep.join(parts)


def engine_env(passphrase_file: Path) -> dict[str, str]:
    """Variables for every Pulumi CLI run; never holds a secret itself, only the file's path."""
    # A passphrase in the caller's environment would win over the file: ours is the only one.
    os.environ.pop("PULUMI_CONFIG_PASSPHRASE", None)
    bin_dir = find_pulumi_bin_dir()
    path = os.pathsep.join([str(plugin_shim_dir()), str(bin_dir), os.environ.get("PATH", "")])
    env = {
        "PATH": path,
        "PYTHONPATH": python_path(),
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_file),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_HOME": os.environ.get("PULUMI_HOME") or str(pulumi_dir() / "home"),
        "PULUMI_BACKEND_URL": backend_url(),
    }
    containers_conf = os.environ.get("CONTAINERS_CONF")
    if not containers_conf:
        default = paths.project_root() / "scripts" / "containers.conf"
        if default.is_file():
            env["CONTAINERS_CONF"] = str(default)
    return env


@functools.cache
def pulumi_command() -> Any:  # auto.PulumiCommand, imported late: pulumi is slow to import
    from pulumi import automation as auto

    bin_dir = find_pulumi_bin_dir()
    try:
        return auto.PulumiCommand(root=str(bin_dir.parent))
    except Exception as exc:  # the SDK refuses a CLI that is too old
        raise ProvisionError(f"the Pulumi CLI in {bin_dir} cannot be used: {exc}") from None
