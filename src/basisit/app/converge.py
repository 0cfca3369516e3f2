"""converge = deploy (basisit.provision) then configure, for one Kommune or many.

Many Kommunen run one after the other, or `parallel` at a time in worker processes (like the
provisioning fleet: Kommunen share nothing but the port allocation record, which is
file-locked). A Kommune whose deploy or configuration fails never stops the others.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
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
) -> dict[str, Any]:
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
        options={
            "desired_state": str(desired_state) if desired_state else None,
            "target": target,
            "actor": actor,
        },
        parallel=1,
        progress=deploy_progress,
    )
    if not deployed.get("ok", True):
        raise BasisItError(f"deploy of AGS {ags} failed: {deployed.get('error')}")
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
    return {
        "ags": ags,
        "ok": result.succeeded,
        "deploy": {
            "changes": deployed.get("changes"),
            "duration_s": deployed.get("duration_s"),
        },
        "configure": {
            "changed": result.changed,
            "duration_s": result.duration_s,
            "hosts": {h: r.status for h, r in sorted(result.hosts.items())},
            "record": str(outcome.record),
        },
        "requests": {str(k): v for k, v in outcome.requests.items()},
        "error": (result.error or f"hosts not configured: {', '.join(failed)}")
        if not result.succeeded
        else None,
    }


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
) -> list[dict[str, Any]]:
    """converge_one for each Kommune, one after the other, in this process.

    One Kommune: its error is raised. Several: a Kommune that cannot converge is reported
    (phase failed) and gets a result with ok False; the others go on.
    """
    results: list[dict[str, Any]] = []
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
            results.append({"ags": ags, "ok": False, "error": str(exc)})
    return results


def _work(ags: str, options: dict[str, Any]) -> dict[str, Any]:
    """One Kommune in a worker process; never raises."""
    try:
        return converge_one(
            ags,
            actor=options["actor"],
            target=options["target"],
            desired_state=Path(options["desired_state"]) if options["desired_state"] else None,
            mode=Mode(options["mode"]),
            report=fleet.report_to_parent,  # phases only: the parent shows progress
        )
    except BasisItError as exc:
        return {"ags": ags, "ok": False, "error": str(exc)}
    except Exception as exc:  # a bug must not take the other Kommunen down
        return {"ags": ags, "ok": False, "error": f"{type(exc).__name__}: {exc}"}


def converge_many(
    kommunen: list[str],
    *,
    actor: str,
    target: str,
    desired_state: Path | None,
    mode: Mode,
    parallel: int,
    report: Report = _silent,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    options = {
        "actor": actor,
        "target": target,
        "desired_state": str(desired_state) if desired_state else None,
        "mode": str(mode),
    }
    return fleet.run_each(
        functools.partial(_work, options=options),
        kommunen,
        parallel=parallel,
        progress=report,
        on_result=on_result,
    )
