"""`basisit doctor` and the image build against real podman: each podman check fails with its
named fix when its prerequisite is taken away, and passes when it is back.

"Taken away" without touching the machine: iptables is hidden from podman (and netavark, which
runs it) by a PATH of links to every program but iptables; the base image by naming one that
does not exist. Nothing is uninstalled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from basisit import paths

pytestmark = [pytest.mark.podman]

PODMAN_CHECKS = ["podman", "podman network", "systemd container", "tun + NET_ADMIN"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(paths.project_root() / "scripts" / "containers.conf"))
    env.update(extra)
    return env


def _doctor(*checks: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    args = [sys.executable, "-m", "basisit.cli.main", "doctor", "--format", "json"]
    for check in checks:
        args += ["--only", check]
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=180, env=env or _env(), check=False
    )
    return proc.returncode, json.loads(proc.stdout or "{}"), proc.stderr


def _by_name(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["checks"]}


@pytest.fixture(scope="module")
def base_image() -> str:
    image = os.environ.get("BASISIT_BASE_IMAGE", "localhost/basisit-base:bookworm")
    if subprocess.run(["podman", "image", "exists", image], env=_env(), check=False).returncode:
        pytest.skip(f"{image} is missing (scripts/build-image.sh --base-only builds it)")
    return image


@pytest.fixture
def path_without_iptables(tmp_path: Path) -> str:
    """A PATH of links to every program on the current PATH and in the sbin folders, except
    iptables and ip6tables (netavark runs `iptables`; nft is left, the roles use it)."""
    shadow = tmp_path / "bin-without-iptables"
    shadow.mkdir()
    dirs = [*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
    for folder in dict.fromkeys(d for d in dirs if d and os.path.isdir(d)):
        for entry in os.scandir(folder):
            if entry.name.startswith(("iptables", "ip6tables")):
                continue
            link = shadow / entry.name
            if not link.exists() and os.access(entry.path, os.X_OK):
                link.symlink_to(entry.path)
    return str(shadow)


def test_all_podman_checks_pass_and_leave_nothing_behind(base_image: str):
    rc, doc, err = _doctor(*PODMAN_CHECKS)
    checks = _by_name(doc)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert list(checks) == PODMAN_CHECKS
    assert "sshd answered on 127.0.0.1:" in checks["systemd container"]["detail"]
    assert "runtime runc" in checks["podman"]["detail"]
    listing = subprocess.run(
        ["podman", "ps", "-a", "--filter", "label=basisit.managed-by=basisit-doctor", "-q"],
        capture_output=True, text=True, env=_env(), check=True,
    ).stdout  # fmt: skip
    assert listing.strip() == ""
    nets = subprocess.run(
        ["podman", "network", "ls", "--filter", "label=basisit.managed-by=basisit-doctor", "-q"],
        capture_output=True, text=True, env=_env(), check=True,
    ).stdout  # fmt: skip
    assert nets.strip() == ""


def test_hidden_iptables_fails_the_container_checks_with_apt_get_install_iptables(
    base_image: str, path_without_iptables: str
):
    rc, doc, _ = _doctor(*PODMAN_CHECKS, env=_env(PATH=path_without_iptables))
    checks = _by_name(doc)
    assert rc == 8
    assert checks["podman"]["ok"] and checks["podman network"]["ok"]
    for name in ("systemd container", "tun + NET_ADMIN"):
        assert not checks[name]["ok"], checks[name]
        assert "netavark" in checks[name]["detail"]
        assert checks[name]["fix"].startswith("apt-get install iptables")

    # Back on the normal PATH, the same checks pass.
    rc, doc, err = _doctor("systemd container", "tun + NET_ADMIN")
    assert rc == 0, err + json.dumps(doc, indent=1)


def test_a_missing_base_image_names_the_build_command(base_image: str):
    rc, doc, _ = _doctor(
        "systemd container", env=_env(BASISIT_BASE_IMAGE="localhost/basisit-nothing:none")
    )
    (check,) = doc["checks"]
    assert rc == 8 and not check["ok"]
    assert "localhost/basisit-nothing:none is missing" in check["detail"]
    assert check["fix"] == "scripts/build-image.sh --base-only"


def test_the_image_build_stops_at_once_when_podman_cannot_run_a_container(
    base_image: str, path_without_iptables: str
):
    """The roles image build used to fail after minutes; now the probe after the base image
    stops it with podman's words, the missing package and a pointer to the doctor."""
    script = paths.project_root() / "scripts" / "build-image.sh"
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=300, check=False,
        env=_env(PATH=path_without_iptables),
    )  # fmt: skip
    seconds = time.monotonic() - start
    assert proc.returncode != 0
    assert "podman cannot run a container" in proc.stderr
    assert "apt-get install iptables" in proc.stderr and "basisit doctor" in proc.stderr
    assert "roles: building" not in proc.stdout
    # Reported, not timed: the probe comes before any package is installed.
    print(f"build-image.sh stopped after {seconds:.1f} s")
