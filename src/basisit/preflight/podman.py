"""Podman checks: the runtime answers, an isolated network can be made, a systemd container
from the base image boots with NET_ADMIN and /dev/net/tun, as the local target's servers do.

One network and one container serve all podman checks of a run (`PodmanSandbox`); they are
labelled and removed at the end, also when a check fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

from basisit.preflight.model import CheckFailed

DOCTOR_LABEL = "basisit.managed-by=basisit-doctor"
PODMAN_PACKAGES = "apt-get install podman runc netavark aardvark-dns iptables"
BOOT_TIMEOUT = 30.0


def base_image() -> str:
    suite = os.environ.get("BASISIT_DEBIAN_SUITE", "bookworm")
    return os.environ.get("BASISIT_BASE_IMAGE") or f"localhost/basisit-base:{suite}"


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    if shutil.which("podman") is None:
        raise CheckFailed("podman is not installed", PODMAN_PACKAGES)
    try:
        return subprocess.run(
            ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(
            f"`podman {' '.join(args[:2])}` did not answer within {timeout:.0f} s",
            "look for a hung podman process (ps -ef | grep podman) and end it",
        ) from None


def _said(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else f"exit {proc.returncode}"


def diagnose(said: str) -> str:
    """The fix for what podman said when it could not run a container."""
    if "netavark" in said and "No such file or directory" in said:
        if shutil.which("iptables") is None:
            return "apt-get install iptables   (podman's network backend netavark runs it)"
        return "apt-get install --reinstall netavark aardvark-dns iptables"
    if "runc" in said or "OCI runtime" in said:
        return "apt-get install runc   (scripts/containers.conf selects it)"
    if "image not known" in said or "no such image" in said.lower():
        return "scripts/build-image.sh --base-only"
    return (
        "run the podman command shown with --log-level=debug; scripts/bootstrap.sh installs podman"
    )


def check_runtime() -> str:
    proc = podman(
        "info",
        "--format",
        "{{.Version.Version}} {{.Host.OCIRuntime.Name}} {{.Host.NetworkBackend}}",
    )
    if proc.returncode != 0:
        raise CheckFailed(f"`podman info` failed: {_said(proc)}", PODMAN_PACKAGES)
    version, runtime, backend = [*proc.stdout.split(), "?", "?", "?"][:3]
    if runtime != "runc":
        raise CheckFailed(
            f"podman {version} uses the OCI runtime {runtime}; crun fails on this cgroup setup",
            "export CONTAINERS_CONF=scripts/containers.conf (source scripts/env.sh)",
        )
    return f"podman {version}, runtime {runtime}, network backend {backend}"


@dataclass
class Booted:
    name: str
    seconds: float
    ssh_port: int


class PodmanSandbox:
    """The run's network and container, made on first use and reused by later checks."""

    def __init__(self) -> None:
        tag = f"{os.getpid()}-{int(time.time() * 1000) % 100000}"
        self.network_name = f"basisit-doctor-{tag}"
        self.container_name = f"basisit-doctor-{tag}"
        self._network: str | CheckFailed | None = None
        self._container: Booted | CheckFailed | None = None

    def network(self) -> str:
        if self._network is None:
            proc = podman(
                "network", "create", "--opt", "isolate=true", "--label", DOCTOR_LABEL,
                self.network_name,
            )  # fmt: skip
            if proc.returncode == 0:
                self._network = self.network_name
            else:
                self._network = CheckFailed(
                    f"podman cannot create an isolated network: {_said(proc)}",
                    diagnose(_said(proc)),
                )
        if isinstance(self._network, CheckFailed):
            raise self._network
        return self._network

    def container(self) -> Booted:
        if self._container is None:
            try:
                self._container = self._boot()
            except CheckFailed as exc:
                self._container = exc
        if isinstance(self._container, CheckFailed):
            raise self._container
        return self._container

    def _boot(self) -> Booted:
        image = base_image()
        if podman("image", "exists", image).returncode != 0:
            raise CheckFailed(
                f"the base image {image} is missing", "scripts/build-image.sh --base-only"
            )
        network = self.network()
        start = time.monotonic()
        proc = podman(
            "run", "-d", "--name", self.container_name, "--label", DOCTOR_LABEL,
            "--network", network, "--systemd=always",
            "--cap-add", "NET_ADMIN", "--device", "/dev/net/tun",
            "-p", "127.0.0.1::22/tcp",
            image, "/sbin/init",
        )  # fmt: skip
        if proc.returncode != 0:
            raise CheckFailed(
                f"podman cannot start a container from {image}: {_said(proc)}",
                diagnose(_said(proc)),
            )
        state = ""
        while time.monotonic() - start < BOOT_TIMEOUT:
            state = podman("exec", self.container_name, "systemctl", "is-system-running").stdout
            state = state.strip()
            if state in {"running", "degraded"}:
                break
            time.sleep(0.2)
        else:
            raise CheckFailed(
                f"systemd in a container from {image} did not come up within "
                f"{BOOT_TIMEOUT:.0f} s (state {state or 'unknown'})",
                "podman logs of a test container: podman run --rm -it --systemd=always "
                f"{image} /sbin/init",
            )
        port = self._published_ssh_port()
        self._wait_ssh_banner(port, start)
        return Booted(self.container_name, time.monotonic() - start, port)

    def _published_ssh_port(self) -> int:
        proc = podman("port", self.container_name, "22/tcp")
        try:
            return int(proc.stdout.strip().splitlines()[0].rsplit(":", 1)[1])
        except (IndexError, ValueError):
            raise CheckFailed(
                f"podman published no port for sshd: {_said(proc)}", diagnose(_said(proc))
            ) from None

    @staticmethod
    def _wait_ssh_banner(port: int, start: float) -> None:
        last = ""
        while time.monotonic() - start < BOOT_TIMEOUT:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                    banner = sock.recv(64).decode("ascii", "replace")
                if banner.startswith("SSH-"):
                    return
                last = f"answered {banner[:20]!r}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise CheckFailed(
            f"sshd in the container did not answer on 127.0.0.1:{port} ({last})",
            "podman's port forwarding needs iptables: apt-get install iptables",
        )

    def exec(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.container().name, *cmd)

    def close(self) -> None:
        """Removes what this run made (and never anything else: names are the run's own)."""
        if self._container is not None:  # also a container that was made but failed to start
            podman("rm", "-f", "-t", "0", self.container_name)
        if self._network is not None:
            podman("network", "rm", "-f", self.network_name)


def check_network(box: PodmanSandbox) -> str:
    return f"isolated network {box.network()} created (removed again at the end)"


def check_container(box: PodmanSandbox) -> str:
    booted = box.container()
    return (
        f"systemd container from {base_image()} running in {booted.seconds:.1f} s, "
        f"sshd answered on 127.0.0.1:{booted.ssh_port}"
    )


def check_net_admin(box: PodmanSandbox) -> str:
    steps = [
        (("ip", "tuntap", "add", "dev", "bdoctor0", "mode", "tun"), "/dev/net/tun"),
        (("ip", "link", "delete", "bdoctor0"), "/dev/net/tun"),
        (("nft", "add", "table", "inet", "basisit_doctor"), "NET_ADMIN (nftables)"),
        (("nft", "delete", "table", "inet", "basisit_doctor"), "NET_ADMIN (nftables)"),
    ]
    for cmd, what in steps:
        proc = box.exec(*cmd)
        if proc.returncode != 0:
            raise CheckFailed(
                f"{what} does not work in a container: `{' '.join(cmd)}` said {_said(proc)}",
                "modprobe tun; run as root (the local target needs CAP_NET_ADMIN)"
                if "tun" in what
                else "run as root (the local target grants its servers CAP_NET_ADMIN)",
            )
    return "a tun device and an nftables table made and removed inside the container"
