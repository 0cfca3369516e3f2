"""plan / deploy / drift / destroy of one Kommune's stack through the Automation API.

One stack per Kommune, named after its AGS, in project "basisit", with an inline program
(stacks.tenant.program) that gets the desired state and everything else as arguments. State
is in a file backend under <data_dir>/pulumi/state, secrets are encrypted with the passphrase
from <data_dir>/secrets/pulumi.passphrase. Every operation holds the Kommune's lock and first
recovers from a killed run (basisit.provision.locking).

The drivers take a desired-state document (contract 1) and return a Result; they never touch
requests. Moving the requests along a deploy is the use case's (basisit.app.deploy).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from basisit import oplock, paths
from basisit.contracts import stack_outputs as outputs
from basisit.contracts.desired_state import DesiredState
from basisit.errors import BasisItError, StackLocked
from basisit.provision import (
    allocation,
    backup_credential,
    environment,
    locking,
    status,
)
from basisit.provision.errors import ProvisionError
from basisit.provision.events import Collector, Progress
from basisit.vault import keys as secrets
from stacks.model import PREFIX_PATTERN
from stacks.targets import TARGETS

# Used by `plan` for a Kommune that has no key pair yet: a preview must not create secrets.
log = logging.getLogger(__name__)
_PLACEHOLDER_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBsYW5wbGFucGxhbnBsYW5wbGFucGxhbnBsYW5wbGFu plan"
)


@dataclass
class Result:
    ags: str
    operation: str
    ok: bool = True
    changes: dict[str, int] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    resource_count: int | None = None
    error: str | None = None
    duration_s: float = 0.0
    outputs_file: str | None = None
    recovery: str | None = None
    request_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def changed(self) -> bool:
        return any(op != "same" and n for op, n in self.changes.items())


def resource_prefix() -> str:
    prefix = os.environ.get("BASISIT_RESOURCE_PREFIX") or "basisit"
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise ProvisionError(
            f"BASISIT_RESOURCE_PREFIX={prefix!r}: use 1-20 lower-case letters, digits, '-'"
        )
    return prefix


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise ProvisionError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    return target


def default_target() -> str:
    return check_target(os.environ.get("BASISIT_TARGET") or "local")


def _check_ags(ags: str, desired: DesiredState) -> None:
    if desired["ags"] != ags:
        raise ProvisionError(f"the desired state is for AGS {desired['ags']!r}, expected {ags!r}")


def deployed_stacks() -> list[str]:
    """AGS of every stack in the backend (whether or not it holds resources)."""
    base = environment.state_path() / ".pulumi" / "stacks" / environment.PROJECT
    return sorted(p.stem for p in base.glob("*.json"))


def _previous_target(ags: str) -> str | None:
    last = status.read(ags).get("last_change") or {}
    if last.get("operation") == "deploy" and ags in deployed_stacks():
        return last.get("target")
    return None


def build_program(ags: str, desired: DesiredState, target: str, *, persist: bool) -> Any:
    """The inline program with its inputs: allocation, SSH key, target settings."""
    from stacks import targets, tenant

    settings = targets.settings_from_env(target, dict(os.environ), str(paths.data_dir()))
    alloc = allocation.allocate(ags, desired, local=target == "local", persist=persist)
    keypair = secrets.ssh_keypair(ags, create=persist)
    return tenant.program(
        desired,
        target=target,
        settings=settings,
        hosts=alloc.hosts,
        ports=alloc.ports,
        prefix=resource_prefix(),
        # Only the public key enters the stack: the private one stays in the vault, the
        # configure step's only reader (basisit.configure.apply.provisioned_ssh_key).
        ssh_public_key=keypair.public_key if keypair else _PLACEHOLDER_KEY,
    )


def _no_program() -> None:
    """Refresh and destroy never run the program; selecting an inline stack needs one."""


def open_stack(ags: str, program: Any) -> Any:
    from pulumi import automation as auto

    env = environment.engine_env(secrets.passphrase_file())
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(environment.workspace_dir(ags)),
        pulumi_home=env["PULUMI_HOME"],
        env_vars=env,
        pulumi_command=environment.pulumi_command(),
        secrets_provider="passphrase",
        project_settings=auto.ProjectSettings(
            name=environment.PROJECT,
            runtime="python",
            backend=auto.ProjectBackend(url=environment.backend_url()),
        ),
    )
    try:
        return auto.create_or_select_stack(
            stack_name=ags, project_name=environment.PROJECT, program=program, opts=opts
        )
    except auto.CommandError as exc:
        raise ProvisionError(
            f"AGS {ags}: cannot open the stack: {_explain(ags, _cli_error(exc))}"
        ) from None


def _cli_error(exc: Exception) -> str:
    stderr = getattr(exc, "stderr", None) or ""
    lines = [ln.strip() for ln in str(stderr).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    text = " | ".join(errors or lines[-3:]) or str(exc).strip()
    return text[-1500:]


def _error_text(exc: Exception, collector: Collector | None, ags: str) -> str:
    if isinstance(exc, BasisItError):
        return str(exc)
    if collector is not None and collector.errors:
        messages = [m for m in (_exception_line(e) for e in collector.errors) if m]
        return _explain(ags, " | ".join(dict.fromkeys(messages))[-1500:])
    return _explain(ags, _cli_error(exc))


def _explain(ags: str, message: str) -> str:
    """Pulumi's words for the two faults of the suite's own files, said as what to do.

    Either way nothing was changed: the CLI stops before the engine touches a resource."""
    if "incorrect passphrase" in message or "passphrase must be set" in message:
        return (
            f"the stack of AGS {ags} cannot be opened with the passphrase in "
            f"{secrets.passphrase_file()}: it is not the one the stack's secrets were made with "
            "(Pulumi: incorrect passphrase). Restore that file from your backup; do not make a "
            "new one, or the stack's secrets are lost. Nothing was changed."
        )
    if "failed to load checkpoint" in message or "could not deserialize" in message:
        checkpoint = (
            environment.state_path() / ".pulumi" / "stacks" / environment.PROJECT / f"{ags}.json"
        )
        detail = message.split("error:", 1)[-1].strip()
        return (
            f"the checkpoint of AGS {ags}'s stack, {checkpoint}, is damaged (Pulumi: {detail}). "
            f"Its previous version is {checkpoint}.bak: check it, then copy it over the damaged "
            "file, or restore the state folder from your backup. Nothing was changed."
        )
    return message


_EXC_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$")


def _exception_line(diagnostic: str) -> str:
    """A provider's traceback reduced to its last 'SomeError: message' line."""
    lines = [ln.strip() for ln in diagnostic.splitlines() if ln.strip()]
    found = [m for m in (_EXC_LINE.match(ln) for ln in lines) if m]
    if found:
        return f"{found[-1].group(1)}: {found[-1].group(2)}"
    text = " ".join(ln for ln in lines if not ln.startswith(("File ", "^", "Traceback")))
    return text if "Resource monitor has terminated" not in text else ""


def _hint(target: str, message: str) -> str:
    if target == "openstack" and "pulumi-resource-openstack" in message:
        return (
            f"{message} (the OpenStack provider plugin cannot be downloaded here; the "
            "openstack target is tested with Pulumi mocks: tests/unit/test_openstack_mocks.py)"
        )
    return message


def _locked_message(ags: str, exc: Exception) -> StackLocked:
    return StackLocked(f"AGS {ags} is busy: {_cli_error(exc)}")


def _recovered(ags: str, program: Any, lock: oplock.KommuneLock) -> tuple[Any, locking.Recovery]:
    """The Kommune's stack, opened under its lock, after clearing what a killed run left."""
    stack = open_stack(ags, program)
    rec = locking.recover(stack, environment.state_dir(), environment.PROJECT, ags, lock.stale)
    return stack, rec


@contextlib.contextmanager
def _one_at_a_time(ags: str) -> Iterator[None]:
    """Pulumi's own refusal of a second update (someone ran `pulumi` by hand) as StackLocked."""
    from pulumi import automation as auto

    try:
        yield
    except auto.ConcurrentUpdateError as exc:
        raise _locked_message(ags, exc) from None


def plan(
    ags: str, desired: DesiredState, *, target: str, progress: Progress | None = None
) -> Result:
    """A preview: what a deploy would create, update, delete. Changes nothing."""
    from pulumi import automation as auto

    check_target(target)
    _check_ags(ags, desired)
    started = time.monotonic()
    result = Result(ags, "plan")
    collector = Collector(ags, progress)
    with oplock.KommuneLock(ags, "plan") as lock:
        program = build_program(ags, desired, target, persist=False)
        stack, rec = _recovered(ags, program, lock)
        result.recovery = rec.describe() if rec.happened else None
        try:
            with _one_at_a_time(ags):
                stack.preview(on_event=collector, color="never")
        except auto.CommandError as exc:
            message = _hint(target, _error_text(exc, collector, ags))
            raise ProvisionError(f"plan of AGS {ags} failed: {message}") from None
    result.changes = collector.counts()
    result.steps = [s.to_dict() for s in collector.steps.values() if s.counted]
    result.duration_s = time.monotonic() - started
    return result


def check_previous_target(ags: str, target: str) -> None:
    """A Kommune deployed on one target is destroyed there before it moves to another."""
    previous = _previous_target(ags)
    if previous and previous != target:
        raise ProvisionError(
            f"AGS {ags} is deployed on target {previous!r}; destroy it there before "
            f"deploying it on {target!r}"
        )


class DeployFailed(ProvisionError):
    """A deploy that failed; `reason` is the message without the 'deploy of AGS ...' lead."""

    def __init__(self, ags: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"deploy of AGS {ags} failed: {reason}")


def deploy(
    ags: str,
    desired: DesiredState,
    *,
    target: str,
    refresh: bool = True,
    progress: Progress | None = None,
    lock: oplock.KommuneLock | None = None,
    request_ids: Sequence[int] = (),
) -> Result:
    """`pulumi up` for one Kommune, then contract 2 into <data_dir>/outputs/<ags>.json and
    the backup credential (openstack) into the Kommune's encrypted secrets store.

    Takes the Kommune's operation lock unless the caller holds it already (`lock`, the use
    case that moves the requests does). `request_ids` only go into the status record.
    """
    check_target(target)
    _check_ags(ags, desired)  # a bad document stops here, before anything changes
    if lock is not None:
        return _deploy(ags, desired, target, refresh, progress, lock, request_ids)
    with oplock.KommuneLock(ags, "deploy") as own:
        check_previous_target(ags, target)
        return _deploy(ags, desired, target, refresh, progress, own, request_ids)


def _deploy(
    ags: str,
    desired: DesiredState,
    target: str,
    refresh: bool,
    progress: Progress | None,
    lock: oplock.KommuneLock,
    request_ids: Sequence[int],
) -> Result:

    started = time.monotonic()
    log.info("AGS %s: deploy on target %s (requests %s)", ags, target, list(request_ids))
    result = Result(ags, "deploy", request_ids=list(request_ids))
    collector = Collector(ags, progress)
    record = status.start(ags, "deploy", target)
    try:
        program = build_program(ags, desired, target, persist=True)
        stack, rec = _recovered(ags, program, lock)
        if rec.happened:
            result.recovery = rec.describe()
            if progress:
                progress(ags, "info", f"recovered from a killed run: {result.recovery}")
        with _one_at_a_time(ags):
            up = stack.up(
                on_event=collector,
                show_secrets=False,
                color="never",
                # After a killed run the state may lag behind reality: read it first.
                refresh=refresh or rec.happened,
                suppress_outputs=True,
            )
        # The backup credential goes into the encrypted store, contract 2 only names it.
        marker = backup_credential.store(ags, up.outputs.get(backup_credential.OUTPUT))
        doc = outputs.document(up.outputs["outputs"].value)
        doc = backup_credential.mark(ags, doc, marker)
        result.outputs_file = str(outputs.write(ags, doc, error=ProvisionError))
        allocation.prune(ags, desired)
        result.changes = collector.counts()
        result.resource_count = collector.resource_count()
        result.steps = [s.to_dict() for s in collector.changed()]
    except Exception as exc:
        message = _hint(target, _error_text(exc, collector, ags))
        log.error("AGS %s: deploy failed: %s", ags, message, exc_info=True)
        result.ok, result.error = False, message
        result.duration_s = time.monotonic() - started
        status.finish(
            ags, record, outcome="failed", error=message, duration_s=result.duration_s,
            extra={"request_ids": result.request_ids, "recovery": result.recovery},
        )  # fmt: skip
        if isinstance(exc, StackLocked):
            raise
        raise DeployFailed(ags, message) from None
    result.duration_s = time.monotonic() - started
    log.info("AGS %s: deployed in %.1f s: %s", ags, result.duration_s, result.changes)
    status.finish(
        ags, record, outcome="succeeded", changes=result.changes,
        resource_count=result.resource_count, duration_s=result.duration_s,
        extra={"request_ids": result.request_ids, "recovery": result.recovery},
    )  # fmt: skip
    return result


def _existing(ags: str) -> None:
    if ags not in deployed_stacks():
        raise ProvisionError(f"AGS {ags} has no stack: nothing was deployed for it")


def drift(ags: str, *, progress: Progress | None = None) -> Result:
    """A read-only refresh preview: does reality still match the stack's state?"""
    from pulumi import automation as auto

    _existing(ags)
    started = time.monotonic()
    result = Result(ags, "drift")
    collector = Collector(ags, progress)
    with oplock.KommuneLock(ags, "drift") as lock:
        stack, rec = _recovered(ags, _no_program, lock)
        result.recovery = rec.describe() if rec.happened else None
        try:
            with _one_at_a_time(ags):
                stack.preview_refresh(on_event=collector, show_secrets=False, color="never")
        except auto.CommandError as exc:
            raise ProvisionError(
                f"drift check of AGS {ags} failed: {_error_text(exc, collector, ags)}"
            ) from None
    result.changes = collector.counts()
    result.steps = [s.to_dict() for s in collector.changed()]
    result.duration_s = time.monotonic() - started
    return result


def previous_target(ags: str) -> str:
    """The target the Kommune was last deployed on ("unknown" when no record says)."""
    return str(status.read(ags).get("target") or "unknown")


def destroy(
    ags: str, *, progress: Progress | None = None, lock: oplock.KommuneLock | None = None
) -> Result:
    """Remove everything of the Kommune: resources, stack, outputs, allocations, SSH key,
    backup credential. Takes the Kommune's lock unless the caller holds it (`lock`)."""
    if lock is not None:
        return _destroy(ags, progress, lock)
    with oplock.KommuneLock(ags, "destroy") as own:
        return _destroy(ags, progress, own)


def _destroy(ags: str, progress: Progress | None, lock: oplock.KommuneLock) -> Result:

    _existing(ags)
    started = time.monotonic()
    result = Result(ags, "destroy")
    collector = Collector(ags, progress)
    target = previous_target(ags)
    record = status.start(ags, "destroy", target)
    try:
        stack, rec = _recovered(ags, _no_program, lock)
        result.recovery = rec.describe() if rec.happened else None
        with _one_at_a_time(ags):
            stack.destroy(on_event=collector, show_secrets=False, color="never")
        result.changes = collector.counts()
        result.steps = [s.to_dict() for s in collector.changed()]
        stack.workspace.remove_stack(ags)
        outputs.remove(ags)
        allocation.release(ags)
        secrets.remove_ssh_keypair(ags)
        backup_credential.remove(ags)
        shutil.rmtree(environment.workspace_dir(ags), ignore_errors=True)
    except Exception as exc:
        message = _error_text(exc, collector, ags)
        result.duration_s = time.monotonic() - started
        status.finish(ags, record, outcome="failed", error=message, duration_s=result.duration_s)
        if isinstance(exc, StackLocked):
            raise
        raise ProvisionError(f"destroy of AGS {ags} failed: {message}") from None
    result.duration_s = time.monotonic() - started
    result.resource_count = 0
    status.finish(
        ags, record, outcome="succeeded", changes=result.changes, resource_count=0,
        duration_s=result.duration_s,
    )  # fmt: skip
    return result
