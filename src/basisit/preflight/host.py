"""Host checks: loop devices (the local target's fixed-size volumes), PostgreSQL's server
binaries (the tests' throwaway database), free space where the suite writes."""

from __future__ import annotations

import glob
import shutil
import subprocess
import tempfile
from pathlib import Path

from basisit.preflight.model import CheckFailed

GIB = 1024**3
# The cache holds the Pulumi CLI and its Go build, the debootstrap root and pip's downloads;
# the data dir holds stack state and the local servers' volume images.
MIN_FREE = {"cache": 4 * GIB, "data": 2 * GIB, "podman storage": 4 * GIB}


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return subprocess.CompletedProcess(cmd, 127, "", f"{cmd[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"{cmd[0]}: no answer in {timeout} s")


def _said(proc: subprocess.CompletedProcess[str]) -> str:
    text = (proc.stderr or proc.stdout).strip()
    return text.splitlines()[-1] if text else f"exit {proc.returncode}"


def check_loop_devices() -> str:
    """A small ext4 image attached to a loop device and detached again, as a volume is."""
    if shutil.which("mkfs.ext4") is None:
        raise CheckFailed("mkfs.ext4 is missing", "apt-get install e2fsprogs")
    with tempfile.TemporaryDirectory(prefix="basisit-doctor-") as tmp:
        image = Path(tmp) / "probe.img"
        with open(image, "wb") as fh:
            fh.truncate(8 * 1024 * 1024)
        mkfs = _run(["mkfs.ext4", "-q", "-F", str(image)])
        if mkfs.returncode != 0:
            raise CheckFailed(f"mkfs.ext4 failed: {_said(mkfs)}", "apt-get install e2fsprogs")
        attach = _run(["losetup", "--find", "--show", str(image)])
        if attach.returncode != 0:
            raise CheckFailed(
                f"no loop device can be attached: {_said(attach)}",
                "run as root; modprobe loop (the local target loop-mounts its volumes)",
            )
        device = attach.stdout.strip()
        detach = _run(["losetup", "--detach", device])
        if detach.returncode != 0:
            raise CheckFailed(f"losetup --detach {device} failed: {_said(detach)}", "losetup -D")
    return f"ext4 image attached to {device} and detached"


def postgres_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    return Path(found[-1]).parent if found else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


def check_postgres() -> str:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise CheckFailed(
            "PostgreSQL's server binaries (initdb, pg_ctl) are missing",
            "apt-get install postgresql   (or set BASISIT_TEST_PG_URL to a server of yours)",
        )
    versions = []
    for tool in ("initdb", "pg_ctl"):
        proc = _run([str(bin_dir / tool), "--version"])
        if proc.returncode != 0:
            raise CheckFailed(
                f"{bin_dir / tool} --version failed: {_said(proc)}",
                "apt-get install --reinstall postgresql",
            )
        versions.append(proc.stdout.strip())
    return "; ".join(versions)


def podman_storage_dir() -> Path:
    return Path("/var/lib/containers/storage")


def _existing(path: Path) -> Path:
    """The nearest existing parent: the folder may not exist yet on a fresh machine."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_free_space(dirs: dict[str, Path]) -> str:
    seen = []
    short = []
    for what, path in dirs.items():
        free = shutil.disk_usage(_existing(path)).free
        need = MIN_FREE.get(what, GIB)
        seen.append(f"{what} {free / GIB:.1f} GiB free")
        if free < need:
            short.append(f"{what} ({path}): {free / GIB:.1f} GiB free, needs {need / GIB:.0f} GiB")
    if short:
        raise CheckFailed(
            "not enough free space: " + "; ".join(short),
            "free space there, or point BASISIT_CACHE / BASISIT_DATA_DIR at a larger disk",
        )
    return ", ".join(seen)


def check_prometheus() -> str:
    """Prometheus and promtool run, in the 2.x line the ledger's boundary rule is tested on.

    Prometheus 3 makes range selectors left-open (2.x includes both ends): the ledger's
    hour rule (start, end] is written and tested against 2.x, so another major version is
    refused here rather than billed differently.
    """
    fix = "apt-get install prometheus   (Debian's 2.42, with promtool)"
    versions = []
    for tool in ("prometheus", "promtool"):
        proc = _run([tool, "--version"])
        if proc.returncode != 0:
            raise CheckFailed(f"{tool} --version failed: {_said(proc)}", fix)
        # "prometheus, version 2.42.0+ds (branch: ...)" -- on stdout or stderr by version
        first = (proc.stdout or proc.stderr).strip().splitlines()[0]
        version = first.split("version", 1)[-1].split()[0] if "version" in first else "?"
        if not version.startswith("2."):
            raise CheckFailed(f"{tool} is version {version}; the ledger needs 2.x", fix)
        versions.append(f"{tool} {version}")
    return ", ".join(versions)
