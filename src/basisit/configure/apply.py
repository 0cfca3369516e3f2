"""The configure driver: outputs + desired state -> inventory -> ansible-runner -> a result.

One operation per Kommune at a time: configure takes the same lock as deploy and destroy
(basisit.oplock), so a configure never runs beside a deploy of the same Kommune.

The order is: read and check both contracts (nothing has happened yet if they are broken),
decrypt the Kommune's secrets into a private temp dir, run site.yml, store new secrets back,
remove the temp dir, write the run record and return the outcome per request (the use case,
basisit.app.configure, then moves the requests: active when every host of the instance
succeeded).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basisit import oplock, runlog
from basisit.configure import inventory as inv
from basisit.configure.connection import Mode
from basisit.configure.errors import ConfigureError
from basisit.configure.events import Reporter, RunEvent, ignore
from basisit.configure.records import write_record
from basisit.configure.runner import RunResult, run_playbook
from basisit.contracts.desired_state import DesiredState
from basisit.vault import keys
from basisit.vault.store import SecretStore

log = logging.getLogger(__name__)
# In the secrets dir, kept in the store: host keys pinned on first contact (servers whose
# outputs carry no host key).
KNOWN_HOSTS = "ssh/known_hosts"
# Requests the configure step finishes: waiting ones and failed ones (a re-run retries them).
FINISHES = ("configuring", "failed")


class Interrupted(ConfigureError):
    exit_code = 130


@dataclass
class ConfigureOutcome:
    result: RunResult
    requests: dict[int, str | None]
    record: Path


def provisioned_ssh_key(ags: str) -> bytes:
    """The Kommune's SSH private key, made by the deploy step and kept encrypted in its store
    (basisit.vault.keys); callers write it only into a run's private temp dir."""
    pair = keys.ssh_keypair(ags, create=False)
    if pair is None:
        raise ConfigureError(
            f"no SSH key for AGS {ags} (nothing in {keys.key_location(ags)}); "
            f"deploy the Kommune first (basisit deploy --ags {ags})"
        )
    return pair.private_key().encode()


def _key_lines(key: bytes) -> set[str]:
    return {ln.strip() for ln in key.decode(errors="ignore").splitlines() if len(ln.strip()) >= 16}


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


@dataclass(frozen=True)
class RequestScope:
    instance: str
    hosts: list[str]  # servers in the inventory whose roles the request needs
    missing: list[str]  # servers it needs that the stack outputs do not have


def request_scopes(desired: DesiredState, inventory: dict[str, Any]) -> dict[int, RequestScope]:
    """request id -> the servers whose success it needs, for the requests configure finishes.

    An instance's own server counts, and for a backup instance also the servers it backs up
    (they run backup_client). An instance without any server (e.g. a zone on openstack) needs
    only the run itself to succeed.
    """
    servers = set(inv.hosts_of(inventory))
    covered = inv.backup_coverage(desired)
    scopes: dict[int, RequestScope] = {}
    for svc in desired["services"]:
        if svc["status"] not in FINISHES:
            continue
        needed = [svc["instance"]] if svc["server"] is not None else []
        needed += sorted(i for i, b in covered.items() if b["instance"] == svc["instance"])
        scopes[svc["request_id"]] = RequestScope(
            instance=svc["instance"],
            hosts=[h for h in needed if h in servers],
            missing=[h for h in needed if h not in servers],
        )
    return scopes


def request_results(
    desired: DesiredState, inventory: dict[str, Any], result: RunResult
) -> dict[int, str | None]:
    """Per request: None when all hosts it needs finished every role, else the first error."""
    results: dict[int, str | None] = {}
    for rid, scope in request_scopes(desired, inventory).items():
        error = None
        if scope.missing:
            error = f"server {scope.missing[0]} is not in the stack outputs (not deployed)"
        for host in scope.hosts:
            error = error or result.host_error(host)
        if error is None and result.error:
            error = result.error
        results[rid] = f"configure {scope.instance}: {error}" if error else None
    return results


def configure(
    ags: str,
    *,
    actor: str,
    mode: Mode = Mode.fast,
    desired: DesiredState,
    report: Reporter = ignore,
    forks: int | None = None,
    time_server: str | None = None,
    playbook: Path | None = None,
) -> ConfigureOutcome:
    """Configure one Kommune from its desired state (contract 1) and stack outputs (contract
    2). Returns per request the outcome (None: every host it needs succeeded); moving the
    requests is the use case's (basisit.app.configure)."""
    outputs = inv.load_outputs(ags)
    time_server = time_server or os.environ.get("BASISIT_TIME_SERVER") or inv.DEFAULT_TIME_SERVER
    # Fails here, before anything runs, if outputs and desired state disagree.
    inv.build_inventory(outputs, desired, time_server=time_server)
    store = SecretStore()

    with oplock.KommuneLock(ags, "configure"):
        ssh_key = provisioned_ssh_key(ags)
        with store.unlocked(ags) as unlocked:
            # Connection files go beside the secrets dir, out of the roles' sight, and are not
            # stored back: the key's home is the deploy step, the pinned keys the outputs'.
            key_file = unlocked.root / "ssh" / "id_ed25519"
            pinned_file = unlocked.root / "ssh" / "known_hosts.pinned"
            _write_private(key_file, ssh_key)
            _write_private(pinned_file, inv.known_hosts_text(outputs).encode())
            unlocked.path(KNOWN_HOSTS).parent.mkdir(mode=0o700, exist_ok=True)
            inventory = inv.build_inventory(
                outputs,
                desired,
                secrets_dir=str(unlocked.secrets_dir),
                ssh_key_file=str(key_file),
                known_hosts_file=str(unlocked.path(KNOWN_HOSTS)),
                pinned_known_hosts_file=str(pinned_file),
                time_server=time_server,
            )
            report(
                RunEvent(
                    kind="start",
                    ags=ags,
                    text=f"Configuring AGS {ags} ({desired['kommune']['name']}): "
                    f"{len(inventory['all']['hosts'])} server(s), connection {mode}",
                    hosts=tuple(inventory["all"]["hosts"]),
                )
            )
            secret_values = unlocked.secret_values() | _key_lines(ssh_key)
            runlog.add_secrets(secret_values)
            log.info(
                "AGS %s: configure, %d server(s), connection %s",
                ags,
                len(inventory["all"]["hosts"]),
                mode,
            )
            result = run_playbook(
                inventory,
                unlocked.root,
                ags=ags,
                mode=mode,
                playbook=playbook,
                secret_values=secret_values,
                report=report,
                forks=forks,
            )
        result.stored_secrets = unlocked.stored

    log.info("AGS %s: configure ended %s in %.1f s", ags, result.status, result.duration_s)
    requests = request_results(desired, inventory, result)
    if result.status == "canceled":
        # Leave the requests where they are: nobody decided the run failed.
        record = write_record(result, {}, {"actor": actor})
        raise Interrupted(f"configuration of AGS {ags} canceled; record {record}")
    record = write_record(result, requests, {"actor": actor})
    return ConfigureOutcome(result=result, requests=requests, record=record)
