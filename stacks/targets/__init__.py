"""Targets: where a Kommune tenant is built (openstack in production, local podman)."""

from __future__ import annotations

from typing import Any

from stacks.targets.base import Target

TARGETS = ("local", "openstack")


def create(name: str, settings: Any, ssh_public_key: str) -> Target:
    """The target named `name`, configured with that target's settings object."""
    if name == "local":
        from stacks.targets.local import LocalTarget

        return LocalTarget(settings, ssh_public_key)
    if name == "openstack":
        from stacks.targets.openstack import OpenStackTarget

        return OpenStackTarget(settings, ssh_public_key)
    raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGETS)})")


def settings_from_env(name: str, env: dict[str, str], data_dir: str) -> Any:
    """Each target's settings from the environment of the process that drives the stacks."""
    if name == "local":
        from stacks.targets.local import LocalSettings

        return LocalSettings.from_env(env, data_dir)
    if name == "openstack":
        from stacks.targets.openstack import OpenStackSettings

        return OpenStackSettings.from_env(env)
    raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGETS)})")
