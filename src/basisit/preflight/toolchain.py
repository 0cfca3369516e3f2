"""Toolchain checks: the Pulumi CLI the SDK will accept, ansible-playbook from the venv."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from basisit.preflight.model import CheckFailed

PULUMI_FIX = "scripts/build-pulumi.sh   (builds the pinned CLI; or put a newer pulumi on PATH)"


def _version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(x) for x in match.groups()) if match else ()


def _show(version: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in version)


def _sdk_minimum() -> tuple[int, ...]:
    """The oldest CLI the SDK itself accepts (it refuses older ones for inline programs)."""
    try:
        from pulumi.automation._minimum_version import _MINIMUM_VERSION
    except ImportError:  # a private module: fall back to the pin in scripts/versions.env
        import os

        return _version(os.environ.get("PULUMI_CLI_MIN_VERSION", "3.181.0"))
    return _version(str(_MINIMUM_VERSION))


def check_pulumi() -> str:
    from basisit.errors import BasisItError
    from basisit.provision.environment import find_pulumi_bin_dir

    try:
        bin_dir = find_pulumi_bin_dir()
    except BasisItError as exc:
        raise CheckFailed(str(exc), PULUMI_FIX) from None
    cli = bin_dir / "pulumi"
    try:
        proc = subprocess.run(
            [str(cli), "version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CheckFailed(f"{cli} does not run: {exc}", PULUMI_FIX) from None
    have = _version(proc.stdout)
    if proc.returncode != 0 or not have:
        raise CheckFailed(
            f"{cli} version answered no version (exit {proc.returncode}); a CLI built "
            "without the version stamp is refused by the Automation API",
            PULUMI_FIX,
        )
    sdk = _version(metadata.version("pulumi"))
    minimum = max(sdk, _sdk_minimum())
    if have < minimum:
        raise CheckFailed(
            f"{cli} is v{_show(have)}; the Python SDK {_show(sdk)} needs at least "
            f"v{_show(minimum)}",
            PULUMI_FIX,
        )
    return f"{cli} v{_show(have)} (SDK {_show(sdk)})"


def venv_bin() -> Path:
    return Path(sys.executable).parent


def check_ansible() -> str:
    # ansible-runner starts it from the venv first (configure.connection.search_path).
    found = shutil.which("ansible-playbook", path=str(venv_bin())) or shutil.which(
        "ansible-playbook"
    )
    fix = "scripts/bootstrap.sh   (installs the venv with ansible)"
    if found is None:
        raise CheckFailed(f"ansible-playbook is not in {venv_bin()} nor on PATH", fix)
    try:
        proc = subprocess.run(
            [found, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CheckFailed(f"{found} --version does not run: {exc}", fix) from None
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip().splitlines()
        raise CheckFailed(f"{found} --version failed: {said[-1] if said else ''}", fix)
    first = proc.stdout.splitlines()[0] if proc.stdout else "?"
    return f"{found}: {first}"
