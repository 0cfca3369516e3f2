"""The host's Debian packages: one list (scripts/host-packages.txt) that bootstrap installs and
that covers every program the suite and its tests run on the host, also those reached only
through another program (iptables, run by podman's netavark)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import pytest

from basisit import paths

LIST = paths.project_root() / "scripts" / "host-packages.txt"

# Programs the suite and its tests run on the host (not inside containers), by whom.
PROGRAMS = {
    "podman": "local target, molecule, image builds",
    "runc": "podman's runtime (scripts/containers.conf)",
    "/usr/lib/podman/netavark": "podman's network backend",
    "/usr/lib/podman/aardvark-dns": "netavark's DNS",
    "iptables": "netavark, for every container start",
    "debootstrap": "scripts/build-image.sh",
    "mkfs.ext4": "local target volumes",
    "losetup": "local target volumes, basisit doctor",
    "flock": "scripts/build-image.sh, build-pulumi.sh, xrechnung-rules.sh",
    "runuser": "scripts/start-postgres.sh",
    "/usr/lib/postgresql/*/bin/initdb": "scripts/start-postgres.sh",
    "ssh": "Ansible's fast connection",
    "ssh-keygen": "provisioning's key pairs",
    "git": "scripts/cold-check.sh",
    "pgrep": "scripts/build-pulumi.sh",
    "curl": "scripts/xrechnung-rules.sh",
    "unzip": "scripts/xrechnung-rules.sh",
    "prometheus": "basisit monitoring up",
    "promtool": "scripts/test.sh (check and test rules), the ledger tests' TSDB blocks",
    "prometheus-node-exporter": "bench/exporter_vs_node_exporter.py",
}


def _entries() -> list[tuple[str, str, str]]:
    rows = []
    for line in LIST.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        body, _, comment = line.partition("#")
        fields = body.split()
        rows.append((fields[0], fields[1] if len(fields) > 1 else "", comment.strip()))
    return rows


def test_every_package_says_if_a_fresh_machine_has_it_and_who_needs_it():
    rows = _entries()
    assert rows, "scripts/host-packages.txt lists nothing"
    for name, fresh, comment in rows:
        assert re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name), name
        assert fresh in {"present", "absent"}, f"{name}: second column is {fresh!r}"
        assert len(comment) > 10, f"{name}: the comment must say who needs it"
    names = [r[0] for r in rows]
    assert len(names) == len(set(names)), "a package is listed twice"


def test_bootstrap_installs_exactly_this_list():
    out = subprocess.run(
        ["bash", str(paths.project_root() / "scripts" / "bootstrap.sh"), "--list-packages"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert [tuple(line.split()) for line in out.splitlines()] == [(n, f) for n, f, _ in _entries()]


def test_the_packages_that_failed_a_fresh_machine_are_listed_as_absent():
    absent = {n for n, f, _ in _entries() if f == "absent"}
    assert {"iptables", "podman", "runc", "netavark", "aardvark-dns", "debootstrap"} <= absent


@pytest.fixture(scope="module")
def owner_of() -> dict[str, str]:
    """Installed file -> its Debian package, from dpkg's file lists (one read, not one
    dpkg-query per program)."""
    lists = glob.glob("/var/lib/dpkg/info/*.list")
    if not lists:
        pytest.skip("not a Debian host")
    owners: dict[str, str] = {}
    for listing in lists:
        package = os.path.basename(listing)[: -len(".list")].split(":")[0]
        with open(listing, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                owners.setdefault(line.rstrip("\n"), package)
    return owners


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_every_program_the_suite_runs_comes_from_a_listed_package(
    program: str, owner_of: dict[str, str]
):
    found = glob.glob(program) if program.startswith("/") else [shutil.which(program) or ""]
    path = next((p for p in found if p), None)
    if path is None:
        pytest.skip(f"{program} is not installed here (bootstrap installs it)")
    # Alternatives (iptables -> xtables-nft-multi) and /bin vs /usr/bin on a merged /usr.
    candidates = [path, os.path.realpath(path)]
    candidates += [c.replace("/usr/", "/", 1) for c in candidates]
    owners = {owner_of[c] for c in candidates if c in owner_of}
    assert owners, f"{path} belongs to no Debian package"
    # Versioned server packages (postgresql-15) come with the listed metapackage.
    owners |= {re.sub(r"-\d+$", "", o) for o in owners}
    listed = {n for n, _, _ in _entries()}
    assert owners & listed, f"{program} ({PROGRAMS[program]}) comes from {owners}: not listed"
