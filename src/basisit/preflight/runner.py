"""Runs the checks in order and reports each result through a callback."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from basisit import paths
from basisit.preflight import host, podman, ports, toolchain, xrechnung
from basisit.preflight.model import CheckFailed, CheckResult, Report


@dataclass(frozen=True)
class Check:
    name: str
    what: str  # one line for --help and the docs
    run: Callable[[podman.PodmanSandbox], str]


def _data_dir() -> Path:
    # Not paths.data_dir(): that creates the folder, and a preflight changes nothing.
    env = os.environ.get("BASISIT_DATA_DIR")
    if env:
        return Path(env)
    from basisit.paths import project_root

    return project_root() / ".data"


def _space(_: podman.PodmanSandbox) -> str:
    return host.check_free_space(
        {
            "cache": paths.cache_dir(),
            "data": _data_dir(),
            "podman storage": host.podman_storage_dir(),
        }
    )


CHECKS: tuple[Check, ...] = (
    Check("podman", "podman answers and uses runc", lambda _: podman.check_runtime()),
    Check("podman network", "an isolated network is created", podman.check_network),
    Check(
        "systemd container",
        "a systemd container from the base image boots; its sshd answers on a 127.0.0.1 port",
        podman.check_container,
    ),
    Check("tun + NET_ADMIN", "a tun device and nftables work inside it", podman.check_net_admin),
    Check(
        "loop devices",
        "an ext4 image is attached to a loop device",
        lambda _: host.check_loop_devices(),
    ),
    Check(
        "pulumi",
        "the Pulumi CLI reports a version the SDK accepts",
        lambda _: toolchain.check_pulumi(),
    ),
    Check("ansible", "ansible-playbook runs from the venv", lambda _: toolchain.check_ansible()),
    Check("postgresql", "initdb and pg_ctl run", lambda _: host.check_postgres()),
    Check("prometheus", "prometheus and promtool 2.x run", lambda _: host.check_prometheus()),
    Check(
        "xrechnung-rules",
        "the cached XRechnung XSD and schematron (scripts/xrechnung-rules.sh) compile",
        lambda _: xrechnung.check_xrechnung_rules(),
    ),
    Check("disk space", "cache, data dir and podman storage have room", _space),
    Check(
        "local ports",
        "BASISIT_LOCAL_PORTS is outside the ephemeral range; no port held by others",
        lambda _: ports.check_ports(),
    ),
)  # fmt: skip


def run_checks(
    only: set[str] | None = None,
    on_start: Callable[[Check], None] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Runs every check (or those named in `only`), each even when an earlier one failed."""
    unknown = (only or set()) - {c.name for c in CHECKS}
    if unknown:
        raise ValueError(f"unknown check(s): {', '.join(sorted(unknown))}")
    box = podman.PodmanSandbox()
    results: list[CheckResult] = []
    try:
        for check in CHECKS:
            if only and check.name not in only:
                continue
            if on_start:
                on_start(check)
            start = time.monotonic()
            try:
                result = CheckResult(check.name, True, check.run(box))
            except CheckFailed as exc:
                result = CheckResult(check.name, False, exc.problem, exc.fix)
            result = replace(result, seconds=time.monotonic() - start)
            results.append(result)
            if on_result:
                on_result(result)
    finally:
        box.close()
    return Report(results)
