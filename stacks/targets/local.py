"""Target local: a Kommune tenant as podman resources on this machine (demo and tests).

- network: one podman network per Kommune with the Kommune's /24 and ``isolate=true``, so a
  container on one Kommune's network cannot reach another Kommune's (netavark otherwise
  routes between bridges);
- server: a systemd container (``--systemd=always``, /sbin/init) from the base image with the
  Kommune's SSH public key in root's authorized_keys, its own SSH host keys, a fixed address,
  sshd, the service ports and the node exporter (9100, the Prometheus scrape target) published
  on 127.0.0.1 only, NET_ADMIN and /dev/net/tun, and the kernel settings its roles need that
  a container only gets at its creation (``--sysctl``: IPv4 forwarding for the VPN server);
- volume: a fixed-size ext4 image (truncate + mkfs.ext4) loop-mounted on the host and
  bind-mounted into the container — a hard quota; volumes without a hard quota are a directory.

The providers are Pulumi dynamic providers. They are pickled into the state by reference to
this module, so they keep no state of their own, import what they use inside their methods
and get everything else as resource inputs. Every provider implements read(), so a refresh
(``basisit drift``) sees a container, network or volume removed or stopped by hand.
Podman runs through its CLI with the environment of the engine, i.e. CONTAINERS_CONF.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pulumi
import pulumi.dynamic as dyn

from stacks.model import METRICS_KEY, VPN_KEY, ServerSpec, TenantPlan
from stacks.targets.base import NetworkHandle, ServerHandle, Target

DEFAULT_IMAGE = "localhost/basisit-base:bookworm"
MANAGED_BY = "basisit"

# Kernel settings (namespaced net.* sysctls) that a server's roles need. /proc/sys is read-only
# inside a container, so they can only be given when the container is created. The VPN server
# forwards its clients into the Kommune's network: without forwarding set here it would only
# work while the host's value happens to be inherited by the container's network namespace.
ROLE_SYSCTLS: dict[str, dict[str, str]] = {"wireguard": {"net.ipv4.ip_forward": "1"}}


def server_sysctls(roles: tuple[str, ...] | list[str]) -> list[str]:
    """The ``key=value`` sysctls for a server with these roles, sorted (stable inputs)."""
    wanted: dict[str, str] = {}
    for role in roles:
        wanted.update(ROLE_SYSCTLS.get(role, {}))
    return [f"{key}={value}" for key, value in sorted(wanted.items())]


@dataclass(frozen=True)
class LocalSettings:
    volumes_dir: str
    image: str = DEFAULT_IMAGE
    ssh_user: str = "root"
    boot_timeout: int = 180

    @classmethod
    def from_env(cls, env: dict[str, str] | None, data_dir: str) -> LocalSettings:
        env = dict(os.environ if env is None else env)
        return cls(
            volumes_dir=str(Path(data_dir) / "volumes"),
            image=env.get("BASISIT_LOCAL_IMAGE") or DEFAULT_IMAGE,
            boot_timeout=int(env.get("BASISIT_LOCAL_BOOT_TIMEOUT") or 180),
        )


# --- podman CLI helpers (used by the providers; plain functions of their inputs) ---------------


class PodmanError(Exception):
    pass


def podman(*args: str, check: bool = True, input_text: str | None = None) -> str:
    import subprocess

    proc = subprocess.run(
        ["podman", *args],
        input=input_text,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and proc.returncode != 0:
        raise PodmanError(
            f"podman {' '.join(args[:3])} failed ({proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-800:]}"
        )
    return proc.stdout


def podman_inspect(kind: str, ref: str) -> dict[str, Any] | None:
    """`podman <kind> inspect ref` as a dict, None when it does not exist."""
    import json
    import subprocess

    proc = subprocess.run(
        ["podman", kind, "inspect", ref], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        text = (proc.stderr or "").lower()
        if "no such" in text or "not found" in text or "unable to find" in text:
            return None
        raise PodmanError(f"podman {kind} inspect {ref} failed: {proc.stderr.strip()[-500:]}")
    data = json.loads(proc.stdout or "[]")
    return data[0] if data else None


def run(cmd: list[str]) -> str:
    import subprocess

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise PodmanError(f"{' '.join(cmd[:2])} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


# --- network -----------------------------------------------------------------------------------


class PodmanNetworkProvider(dyn.ResourceProvider):
    REPLACE_KEYS: ClassVar[tuple[str, ...]] = ("network_name", "subnet", "gateway", "labels")

    def _observed(self, info: dict[str, Any]) -> dict[str, Any]:
        subnets = info.get("subnets") or [{}]
        return {
            "network_name": info.get("name"),
            "subnet": subnets[0].get("subnet"),
            "gateway": subnets[0].get("gateway"),
            "labels": dict(info.get("labels") or {}),
            "isolate": (info.get("options") or {}).get("isolate") == "true",
            "network_id": info.get("id"),
        }

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        name = props["network_name"]
        info = podman_inspect("network", name)
        if info is not None:
            seen = self._observed(info)
            mine = seen["labels"].get("basisit.ags") == props["labels"].get("basisit.ags")
            if not (mine and seen["subnet"] == props["subnet"] and seen["isolate"]):
                raise PodmanError(
                    f"podman network {name} already exists with subnet {seen['subnet']} and "
                    f"labels {seen['labels']}; it is not this Kommune's, remove or rename it"
                )
            # Left over by an interrupted deploy (created, never recorded): adopt it.
            return dyn.CreateResult(name, {**props, **seen})
        args = ["network", "create", "--subnet", props["subnet"], "--gateway", props["gateway"]]
        args += ["--opt", "isolate=true"]
        for key, value in sorted(props["labels"].items()):
            args += ["--label", f"{key}={value}"]
        podman(*args, name)
        info = podman_inspect("network", name)
        if info is None:
            raise PodmanError(f"podman network {name} vanished right after its creation")
        return dyn.CreateResult(name, {**props, **self._observed(info)})

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        info = podman_inspect("network", id_)
        if info is None:
            return dyn.ReadResult("", {})
        return dyn.ReadResult(id_, {**props, **self._observed(info)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        replaces = [k for k in self.REPLACE_KEYS if olds.get(k) != news.get(k)]
        if olds.get("isolate") is False:
            replaces.append("isolate")
        return dyn.DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=True)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if podman_inspect("network", id_) is not None:
            podman("network", "rm", id_)


class PodmanNetwork(dyn.Resource, module="basisit", name="PodmanNetwork"):
    network_name: pulumi.Output[str]
    network_id: pulumi.Output[str]
    subnet: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        network_name: str,
        subnet: str,
        gateway: str,
        labels: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "network_name": network_name,
            "subnet": subnet,
            "gateway": gateway,
            "labels": labels,
            "isolate": None,
            "network_id": None,
        }
        super().__init__(PodmanNetworkProvider(), resource_name, props, opts)


# --- volume ------------------------------------------------------------------------------------


class LocalVolumeProvider(dyn.ResourceProvider):
    """A fixed-size ext4 image mounted at `path`, or (fixed_size false) a plain directory."""

    REPLACE_KEYS: ClassVar[tuple[str, ...]] = ("path", "image", "fixed_size", "label")

    def _fstype(self, image: str) -> str:
        import subprocess

        proc = subprocess.run(
            ["blkid", "-o", "value", "-s", "TYPE", image],
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.strip()

    def _fs_size(self, image: str) -> int:
        """Bytes the filesystem spans (the quota), which may lag behind a grown image file."""
        fields = {}
        for line in run(["dumpe2fs", "-h", image]).splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        return int(fields["Block count"]) * int(fields["Block size"])

    def _mount(self, image: str, path: str) -> None:
        import os

        if not os.path.ismount(path):
            run(["mount", "-o", "loop,nodev,nosuid", image, path])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        import os

        path = props["path"]
        os.makedirs(path, exist_ok=True)
        if not props["fixed_size"]:
            return dyn.CreateResult(path, {**props, "mounted": None})
        image = props["image"]
        if os.path.exists(image):
            # Left over by an interrupted deploy: keep its data if it is a filesystem.
            if self._fstype(image) != "ext4":
                raise PodmanError(f"{image} exists and holds no ext4 filesystem; move it away")
        else:
            with open(image, "wb") as fh:
                fh.truncate(int(props["size_bytes"]))
            try:
                # -m 0: the whole size is the share's; no blocks reserved for root.
                run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", props["label"][:16], image])
            except Exception:
                os.remove(image)
                raise
        self._mount(image, path)
        return dyn.CreateResult(image, {**props, "mounted": True})

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        import os

        if not props.get("fixed_size"):
            if not os.path.isdir(id_):
                return dyn.ReadResult("", {})
            return dyn.ReadResult(id_, dict(props))
        if not os.path.exists(id_):
            return dyn.ReadResult("", {})
        return dyn.ReadResult(
            id_,
            {
                **props,
                "size_bytes": self._fs_size(id_),
                "mounted": os.path.ismount(props["path"]),
            },
        )

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        failures = []
        both_fixed = bool(olds) and news.get("fixed_size") and olds.get("fixed_size")
        if both_fixed and int(news["size_bytes"]) < int(olds.get("size_bytes") or 0):
            failures.append(
                dyn.CheckFailure(
                    "size_bytes",
                    f"volume {news['label']}: shrinking a fixed-size volume from "
                    f"{int(olds['size_bytes'])} to {int(news['size_bytes'])} bytes could lose "
                    "data; "
                    "only growing is supported",
                )
            )
        return dyn.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        replaces = [k for k in self.REPLACE_KEYS if olds.get(k) != news.get(k)]
        changes = bool(replaces)
        if news.get("fixed_size"):
            changes = (
                changes
                or int(olds.get("size_bytes") or 0) != int(news["size_bytes"])
                or olds.get("mounted") is False
            )
        return dyn.DiffResult(changes=changes, replaces=replaces, delete_before_replace=True)

    def _users(self, path: str) -> list[str]:
        """Running containers that bind-mount `path`."""
        import json

        ids = podman("ps", "-q", "--no-trunc").split()
        if not ids:
            return []
        inspected = json.loads(podman("container", "inspect", *ids) or "[]")
        return [
            c["Id"]
            for c in inspected
            if any(m.get("Source") == path for m in c.get("Mounts") or [])
        ]

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        import os

        path, image = news["path"], news["image"]
        os.makedirs(path, exist_ok=True)
        size = int(news["size_bytes"])
        if size > self._fs_size(image):
            # Growing an ext4 online needs CAP_SYS_RESOURCE, which these machines do not
            # grant; so the server using the volume stops for the moment of an offline grow.
            users = self._users(path)
            for cid in users:
                podman("stop", "-t", "10", cid)
            try:
                if os.path.ismount(path):
                    run(["umount", path])
                with open(image, "r+b") as fh:
                    fh.truncate(max(size, os.path.getsize(image)))
                run(["e2fsck", "-f", "-p", image])
                run(["resize2fs", image])
                self._mount(image, path)
            finally:
                for cid in users:
                    podman("start", cid, check=False)
        self._mount(image, path)
        return dyn.UpdateResult({**news, "mounted": True})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        import contextlib
        import os
        import shutil

        path = props["path"]
        if props.get("fixed_size"):
            if os.path.ismount(path):
                run(["umount", path])
            with contextlib.suppress(FileNotFoundError):
                os.remove(props["image"])
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
        # The Kommune's volume folder goes with its last volume.
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))


class LocalVolume(dyn.Resource, module="basisit", name="LocalVolume"):
    path: pulumi.Output[str]
    size_bytes: pulumi.Output[int]

    def __init__(
        self,
        resource_name: str,
        *,
        path: str,
        image: str,
        size_bytes: int,
        fixed_size: bool,
        label: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "path": path,
            "image": image,
            "size_bytes": size_bytes,
            "fixed_size": fixed_size,
            "label": label,
            "mounted": None,
        }
        super().__init__(LocalVolumeProvider(), resource_name, props, opts)


# --- server ------------------------------------------------------------------------------------

# Runs inside a fresh container, the public key on stdin: root's key, host keys of its own
# (the image's would be shared by every server), sshd restarted to use them.
SSH_SETUP = """
set -eu
umask 077
mkdir -p /root/.ssh
cat > /root/.ssh/authorized_keys
if [ ! -e /etc/ssh/.basisit-host-keys ]; then
  rm -f /etc/ssh/ssh_host_*
  ssh-keygen -A >/dev/null
  touch /etc/ssh/.basisit-host-keys
fi
systemctl restart ssh.service
cat /etc/ssh/ssh_host_ed25519_key.pub
"""


class PodmanServerProvider(dyn.ResourceProvider):
    # Numbers arrive as floats (protobuf Struct); podman wants integers, hence int() below.
    REPLACE_KEYS: ClassVar[tuple[str, ...]] = (
        "container_name",
        "hostname",
        "image",
        "network",
        "ip",
        "ssh_port",
        "publish",
        "labels",
        "mounts",
        "ssh_public_key",
        "cap_add",
        "devices",
    )

    def _wait_booted(self, cid: str, timeout: int) -> None:
        import time

        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = podman("exec", cid, "systemctl", "is-system-running", check=False).strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.5)
        raise PodmanError(f"container {cid[:12]}: systemd not up after {timeout}s ({state!r})")

    def _wait_ssh(self, port: int, timeout: int) -> None:
        import socket
        import time

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
                    conn.settimeout(3)
                    banner = conn.recv(64)
                    if banner.startswith(b"SSH-"):
                        return
                    last = repr(banner)
            except OSError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise PodmanError(f"sshd on 127.0.0.1:{port} did not answer within {timeout}s ({last})")

    def _start(self, cid: str, props: dict[str, Any]) -> str:
        """Boot, install the key, wait for sshd; the container's SSH host key comes back."""
        timeout = int(props.get("boot_timeout") or 180)
        podman("start", cid)
        self._wait_booted(cid, timeout)
        host_key = podman(
            "exec", "-i", cid, "sh", "-c", SSH_SETUP, input_text=props["ssh_public_key"] + "\n"
        ).strip()
        self._wait_ssh(int(props["ssh_port"]), timeout)
        return host_key

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        name = props["container_name"]
        info = podman_inspect("container", name)
        if info is not None:
            labels = (info.get("Config") or {}).get("Labels") or {}
            if labels.get("basisit.ags") != props["labels"].get("basisit.ags"):
                raise PodmanError(f"a container named {name} exists and is not this Kommune's")
            # Left over by an interrupted deploy; servers keep no data outside their volumes.
            podman("rm", "-f", "-t", "5", name)
        args = [
            "create",
            "--name", name,
            "--hostname", props["hostname"],
            "--systemd=always",
            "--network", props["network"],
            "--ip", props["ip"],
            "-p", f"127.0.0.1:{int(props['ssh_port'])}:22/tcp",
        ]  # fmt: skip
        for pub in props["publish"]:
            host_port, port = int(pub["host_port"]), int(pub["port"])
            args += ["-p", f"127.0.0.1:{host_port}:{port}/{pub['protocol']}"]
        for key, value in sorted(props["labels"].items()):
            args += ["--label", f"{key}={value}"]
        for mount in props["mounts"]:
            args += ["-v", f"{mount['source']}:{mount['target']}"]
        for cap in props["cap_add"]:
            args += ["--cap-add", cap]
        for dev in props["devices"]:
            args += ["--device", dev]
        for sysctl in props.get("sysctls") or []:
            args += ["--sysctl", sysctl]
        args += [props["image"], "/sbin/init"]
        cid = podman(*args).strip()
        try:
            host_key = self._start(cid, props)
        except Exception:
            # create must be all or nothing: a half-started server is removed again.
            podman("rm", "-f", "-t", "2", cid, check=False)
            raise
        return dyn.CreateResult(
            cid, {**props, "container_id": cid, "running": True, "ssh_host_key": host_key}
        )

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        info = podman_inspect("container", id_)
        if info is None:
            return dyn.ReadResult("", {})
        state = info.get("State") or {}
        return dyn.ReadResult(id_, {**props, "running": bool(state.get("Running"))})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        replaces = [k for k in self.REPLACE_KEYS if olds.get(k) != news.get(k)]
        # Servers created before sysctls were an input have none: only a server whose roles
        # need one is replaced for it (a new container is the only way to set it).
        if list(olds.get("sysctls") or []) != list(news.get("sysctls") or []):
            replaces.append("sysctls")
        changes = bool(replaces) or olds.get("running") is False
        return dyn.DiffResult(changes=changes, replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        # Only reached for a stopped server (everything else replaces): start it again.
        host_key = self._start(id_, news)
        return dyn.UpdateResult(
            {**news, "container_id": id_, "running": True, "ssh_host_key": host_key}
        )

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if podman_inspect("container", id_) is not None:
            podman("rm", "-f", "-t", "5", id_)


class PodmanServer(dyn.Resource, module="basisit", name="PodmanServer"):
    container_id: pulumi.Output[str]
    ssh_port: pulumi.Output[int]
    ssh_host_key: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        props: dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            PodmanServerProvider(),
            resource_name,
            {**props, "container_id": None, "running": None, "ssh_host_key": None},
            opts,
        )


# --- the target --------------------------------------------------------------------------------


class LocalTarget(Target):
    name = "local"

    def __init__(self, settings: LocalSettings, ssh_public_key: str) -> None:
        self.settings = settings
        self.ssh_public_key = ssh_public_key

    def labels(self, plan: TenantPlan, spec: ServerSpec | None = None) -> dict[str, str]:
        labels = {"basisit.ags": plan.ags, "basisit.managed-by": MANAGED_BY}
        if spec is not None:
            labels["basisit.service"] = spec.service
            labels["basisit.instance"] = spec.instance
        return labels

    def network(self, plan: TenantPlan, parent: pulumi.Resource) -> NetworkHandle:
        net = PodmanNetwork(
            f"{plan.resource_base}-net",
            network_name=plan.resource_base,
            subnet=plan.cidr,
            gateway=plan.gateway,
            labels=self.labels(plan),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        return NetworkHandle(name=net.network_name, resource=net)

    def server(
        self,
        plan: TenantPlan,
        spec: ServerSpec,
        network: NetworkHandle,
        parent: pulumi.Resource,
    ) -> ServerHandle:
        if spec.ssh_port is None:
            raise ValueError(f"server {spec.instance}: the local target needs allocated ports")
        base = f"{plan.resource_base}-{spec.instance}"
        volume_root = Path(self.settings.volumes_dir) / plan.ags
        volumes = []
        mounts: list[dict[str, Any]] = []
        for vol in spec.volumes:
            stem = volume_root / f"{spec.instance}-{vol.name}"
            volume = LocalVolume(
                f"{base}-vol-{vol.name}",
                path=str(stem),
                image=f"{stem}.img" if vol.fixed_size else "",
                size_bytes=vol.size_bytes,
                fixed_size=vol.fixed_size,
                label=f"{spec.instance}-{vol.name}",
                opts=pulumi.ResourceOptions(parent=parent),
            )
            volumes.append(volume)
            mounts.append({"source": volume.path, "target": vol.mount})
        publish = []
        for key, host_port in sorted(spec.published.items()):
            port, proto = key.split("/")
            publish.append({"host_port": host_port, "port": int(port), "protocol": proto})
        props = {
            "container_name": base,
            "hostname": spec.instance,
            "image": self.settings.image,
            "network": network.name,
            "ip": spec.address,
            "ssh_port": spec.ssh_port,
            "publish": publish,
            "labels": self.labels(plan, spec),
            "mounts": mounts,
            "ssh_public_key": self.ssh_public_key,
            "cap_add": ["NET_ADMIN"],
            "devices": ["/dev/net/tun"],
            "sysctls": server_sysctls(spec.roles),
            "boot_timeout": self.settings.boot_timeout,
        }
        server = PodmanServer(
            f"{base}-server",
            props=props,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[network.resource, *volumes]),
        )
        return ServerHandle(
            ssh_host="127.0.0.1",
            ssh_port=server.ssh_port,
            ssh_user=self.settings.ssh_user,
            resource=server,
            published_ports=dict(spec.published),
            # Prometheus on this machine scrapes through podman's port forwarding, which
            # masquerades the host's connections to the network's gateway.
            metrics_host="127.0.0.1",
            metrics_port=spec.published[METRICS_KEY],
            metrics_sources=[plan.gateway],
            # Like every service port, WireGuard's UDP port is published on 127.0.0.1 only:
            # on this target the VPN's clients are on this machine.
            vpn_host="127.0.0.1" if spec.vpn else None,
            vpn_port=spec.published[VPN_KEY] if spec.vpn else None,
        )
