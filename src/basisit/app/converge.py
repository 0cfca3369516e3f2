"""converge = deploy (basisit.provision) then configure, for one Kommune or many.

Many Kommunen run one after the other, or `parallel` at a time in worker processes (like the
provisioning fleet: Kommunen share nothing but the port allocation record, which is
file-locked). A Kommune whose deploy or configuration fails never stops the others.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from basisit.app import fleet
from basisit.app.sources import Source
from basisit.configure.connection import Mode
from basisit.configure.events import Reporter, ignore
from basisit.errors import BasisItError

# (ags, phase, text): phase is deploy | configure | done | failed
Report = Callable[[str, str, str], None]


def _silent(ags: str, phase: str, text: str) -> None:
    return None


@dataclass(frozen=True)
class Deployed:
    changes: dict[str, int]
    duration_s: float


@dataclass(frozen=True)
class Configured:
    changed: int
    duration_s: float
    hosts: dict[str, str]  # host -> ok | failed | unreachable ...
    record: str  # the configuration run's record


@dataclass(frozen=True)
class ConvergeResult:
    """One Kommune converged: its deploy and configuration (None when it did not get that
    far), the requests it moved, and the error when it failed."""

    ags: str
    ok: bool
    error: str | None = None
    deploy: Deployed | None = None
    configure: Configured | None = None
    requests: dict[str, str | None] = field(default_factory=dict)  # request id -> its status

    @classmethod
    def failed(cls, ags: str, error: str) -> ConvergeResult:
        return cls(ags, ok=False, error=error)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`--format json`): a failure before the deploy is ags, ok, error."""
        found: dict[str, Any] = {"ags": self.ags, "ok": self.ok}
        if self.deploy is not None or self.configure is not None:
            found["deploy"] = asdict(self.deploy) if self.deploy else None
            found["configure"] = asdict(self.configure) if self.configure else None
            found["requests"] = self.requests
        found["error"] = self.error
        return found


def converge_one(
    ags: str,
    *,
    actor: str,
    target: str,
    desired_state: Path | None = None,
    mode: Mode = Mode.fast,
    run_report: Reporter = ignore,
    report: Report = _silent,
    deploy_progress: Callable[[str, str, str], None] | None = None,
) -> ConvergeResult:
    """Deploy, then configure one Kommune. Raises BasisItError when either step cannot run;
    failed hosts are not an exception but part of the result (ok False)."""
    from basisit.app import configure as configuring

    source = Source(desired_state)
    report(ags, "deploy", f"deploying on target {target}")
    # The deploy runs in a spawned process: once gRPC (the Automation API's transport) has run
    # in a process, ansible-runner's fork of ansible-playbook from it dies in gRPC's fork
    # handlers ("epoll_wait error: Bad file descriptor"), so the two never share a process.
    (deployed,) = fleet.run(
        "deploy",
        [ags],
        options=fleet.Options(
            target=target, actor=actor, desired_state=str(desired_state) if desired_state else None
        ),
        parallel=1,
        progress=deploy_progress,
    )
    if not deployed.ok:
        raise BasisItError(f"deploy of AGS {ags} failed: {deployed.error}")
    report(ags, "configure", "configuring")
    # The desired state is read after the deploy: it moved the requests to configuring.
    outcome = configuring.configure(
        ags,
        actor=actor,
        source=source,
        mode=mode,
        report=run_report,
    )
    result = outcome.result
    failed = sorted(h for h, r in result.hosts.items() if r.status != "ok")
    problem = result.error or f"hosts not configured: {', '.join(failed)}"
    return ConvergeResult(
        ags=ags,
        ok=result.succeeded,
        deploy=Deployed(dict(deployed.changes), deployed.duration_s),
        configure=Configured(
            changed=result.changed,
            duration_s=result.duration_s,
            hosts={h: r.status for h, r in sorted(result.hosts.items())},
            record=str(outcome.record),
        ),
        requests={str(k): v for k, v in outcome.requests.items()},
        error=None if result.succeeded else problem,
    )


def converge_in_turn(
    kommunen: list[str],
    *,
    actor: str,
    target: str,
    desired_state: Path | None,
    mode: Mode,
    run_report: Reporter = ignore,
    report: Report = _silent,
    deploy_progress: Callable[[str, str, str], None] | None = None,
) -> list[ConvergeResult]:
    """converge_one for each Kommune, one after the other, in this process.

    One Kommune: its error is raised. Several: a Kommune that cannot converge is reported
    (phase failed) and gets a result with ok False; the others go on.
    """
    results: list[ConvergeResult] = []
    for ags in kommunen:
        try:
            results.append(
                converge_one(
                    ags,
                    actor=actor,
                    target=target,
                    desired_state=desired_state,
                    mode=mode,
                    run_report=run_report,
                    report=report,
                    deploy_progress=deploy_progress,
                )
            )
        except BasisItError as exc:
            if len(kommunen) == 1:
                raise
            report(ags, "failed", str(exc))
            results.append(ConvergeResult.failed(ags, str(exc)))
    return results


@dataclass(frozen=True)
class _Options:
    actor: str
    target: str
    desired_state: str | None
    mode: str


def _work(ags: str, options: _Options) -> ConvergeResult:
    """One Kommune in a worker process; never raises."""
    try:
        return converge_one(
            ags,
            actor=options.actor,
            target=options.target,
            desired_state=Path(options.desired_state) if options.desired_state else None,
            mode=Mode(options.mode),
            report=fleet.report_to_parent,  # phases only: the parent shows progress
        )
    except BasisItError as exc:
        return ConvergeResult.failed(ags, str(exc))
    except Exception as exc:  # a bug must not take the other Kommunen down
        return ConvergeResult.failed(ags, f"{type(exc).__name__}: {exc}")


def converge_many(
    kommunen: list[str],
    *,
    actor: str,
    target: str,
    desired_state: Path | None,
    mode: Mode,
    parallel: int,
    report: Report = _silent,
    on_result: Callable[[ConvergeResult], None] | None = None,
) -> list[ConvergeResult]:
    options = _Options(actor, target, str(desired_state) if desired_state else None, str(mode))
    return fleet.run_each(
        functools.partial(_work, options=options),
        kommunen,
        parallel=parallel,
        progress=report,
        on_result=on_result,
        failed=ConvergeResult.failed,
    )
