"""The program for a `pulumi up` run by hand (stacks/__main__.py), from stack config alone.

The suite runs `stacks.tenant.program` inline and hands it what the driver allocated (host
numbers, 127.0.0.1 ports) and the Kommune's SSH key. A hand run must not allocate, create keys
or touch the suite's records, so everything comes from the stack's config instead:

    basisit:desiredState   path of the desired-state file (contract 1), required
    basisit:target         local (default) or openstack
    basisit:sshPublicKey   the public key the servers accept, required
    basisit:hosts          JSON {instance: host number}; default: numbered in the document's order
    basisit:ports          JSON {port slot: 127.0.0.1 port}, required on the local target
                           (the slots are stacks.model.port_slots; `basisit inventory` shows
                           the ports a deploy allocated)
    basisit:prefix         resource name prefix (default basisit)

The target's own settings come from the environment, as for an inline run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from basisit import addressing, paths
from basisit.contracts import desired_state
from stacks import targets, tenant
from stacks.model import check_prefix, port_slots, server_services


class ConfigError(ValueError):
    """The stack config does not say what the program needs."""


def _json_map(name: str, raw: str | None) -> dict[str, int] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"basisit:{name} is not JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(v, int) for v in value.values()):
        raise ConfigError(f"basisit:{name} must be a JSON object of integers")
    return {str(k): int(v) for k, v in value.items()}


def program_from_config(
    get: Callable[[str], str | None], env: Mapping[str, str] | None = None
) -> Callable[[], None]:
    """The inline program for the stack whose config `get(key)` reads (None when unset)."""
    env = dict(os.environ if env is None else env)
    source = get("desiredState")
    if not source:
        raise ConfigError("set basisit:desiredState to a desired-state file")
    desired = desired_state.load(Path(source))
    target = get("target") or "local"
    if target not in targets.TARGETS:
        raise ConfigError(f"unknown target {target!r} (known: {', '.join(targets.TARGETS)})")
    public_key = get("sshPublicKey")
    if not public_key:
        raise ConfigError("set basisit:sshPublicKey to the public key the servers accept")
    instances = [svc["instance"] for svc in server_services(dict(desired))]
    hosts = _json_map("hosts", get("hosts")) or addressing.assign_hosts(instances, {})
    ports = _json_map("ports", get("ports"))
    if target == "local":
        missing = [slot for slot in port_slots(dict(desired)) if slot not in (ports or {})]
        if missing:
            raise ConfigError(f"basisit:ports lacks {', '.join(missing)}")
    data_dir = env.get("BASISIT_DATA_DIR") or str(paths.data_dir())
    settings: Any = targets.settings_from_env(target, env, data_dir)
    return tenant.program(
        dict(desired),
        target=target,
        settings=settings,
        hosts=hosts,
        ports=ports,
        prefix=check_prefix(get("prefix") or env.get("BASISIT_RESOURCE_PREFIX") or "basisit"),
        ssh_public_key=public_key,
    )
