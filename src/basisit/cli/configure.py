"""basisit configure | converge

`configure` applies the Ansible roles to a deployed Kommune; `converge` deploys and then
configures: the one command an operator runs. Progress and the per-host summary go to the
terminal; `--format json|yaml` prints the results on stdout for scripts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from basisit.cli.common import ACTOR_OPTION, Format, console, emit, err_console
from basisit.cli.render import Table, esc, plain
from basisit.cli.run_progress import LiveRun, summary_table
from basisit.configure.connection import Mode

if TYPE_CHECKING:  # imported when used, as the stack driver it runs loads Pulumi
    from basisit.app.converge import ConvergeResult

CONNECTION_OPTION = typer.Option(
    Mode.fast,
    "--connection",
    help="fast: OpenSSH with pipelining and ControlPersist; mitogen: fast plus the "
    "mitogen_linear strategy; default: Ansible's own settings",
)
DESIRED_OPTION = typer.Option(
    None,
    "--desired-state",
    help="Desired state file (YAML/JSON), or a folder of them for --all, instead of the "
    "request database; requests are then left as they are",
)
FORMAT_OPTION = typer.Option(Format.table, "--format")


def configure(
    ags: str = typer.Option(..., "--ags", help="AGS of the Kommune"),
    desired_state: Path | None = DESIRED_OPTION,
    connection: Mode = CONNECTION_OPTION,
    forks: int | None = typer.Option(None, "--forks", min=1, help="Hosts at a time"),
    actor: str | None = ACTOR_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Run the roles (playbooks/site.yml) on the Kommune's servers through ansible-runner."""
    from basisit.app import configure as configuring
    from basisit.app.sources import Source
    from basisit.requests.service import actor_name

    ags = ags.strip()
    out = err_console if fmt is not Format.table else console
    with LiveRun(out) as report:
        outcome = configuring.configure(
            ags,
            actor=actor_name(actor),
            source=Source(desired_state),
            mode=connection,
            report=report,
            forks=forks,
        )
    out.print(summary_table(outcome.result))
    for rid, error in sorted(outcome.requests.items()):
        state = "[green]active[/]" if error is None else f"[red]failed[/]: {esc(error)}"
        out.print(f"request {rid}: {state}", highlight=False)
    if fmt is not Format.table:
        record = outcome.result.to_record()
        record["requests"] = {str(k): v for k, v in outcome.requests.items()}
        record["record_file"] = str(outcome.record)
        emit(record, fmt)
    else:
        console.print(f"run record: {esc(outcome.record)}", highlight=False)
    if not outcome.result.succeeded:
        raise typer.Exit(1)


def _select(ags: str | None, all_: bool, desired_state: Path | None) -> list[str]:
    from basisit.app.sources import Source
    from basisit.cli.provision import select_kommunen

    return select_kommunen(ags, all_, Source(desired_state))


def _results_table(results: list[ConvergeResult]) -> Table:
    table = Table(title=f"Converge of {len(results)} Kommune(n)")
    for col in ("AGS", "Outcome", "Hosts", "Changed", "Seconds", "Problem"):
        table.add_column(col, justify="right" if col in ("Changed", "Seconds") else "left")
    for res in results:
        cfg = res.configure
        hosts = cfg.hosts if cfg else {}
        ok_hosts = sum(1 for s in hosts.values() if s == "ok")
        seconds = (res.deploy.duration_s if res.deploy else 0) + (cfg.duration_s if cfg else 0)
        table.add_row(
            res.ags,
            plain("ok", "green") if res.ok else plain("failed", "red"),
            f"{ok_hosts}/{len(hosts)} ok" if hosts else "-",
            str(cfg.changed) if cfg else "-",
            f"{seconds:.0f}",
            (res.error or "")[:80],
        )
    return table


def converge(
    ags: str | None = typer.Option(None, "--ags", help="AGS of the Kommune"),
    all_: bool = typer.Option(False, "--all", help="Every onboarded Kommune (or every file)"),
    desired_state: Path | None = DESIRED_OPTION,
    target: str | None = typer.Option(
        None, "--target", help="local (podman) or openstack; default $BASISIT_TARGET or local"
    ),
    parallel: int = typer.Option(
        1, "--parallel", "-p", min=1, help="Kommunen at a time (--all), each in its own process"
    ),
    connection: Mode = CONNECTION_OPTION,
    actor: str | None = ACTOR_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Deploy the Kommune's infrastructure, then configure it: the operator's one command."""
    from basisit.app import converge as conv
    from basisit.provision import operations
    from basisit.requests.service import actor_name

    kommunen = _select(ags, all_, desired_state)
    tgt = operations.check_target(target) if target else operations.default_target()
    who = actor_name(actor)
    out = err_console if fmt is not Format.table else console

    def show(ags_: str, phase: str, text: str) -> None:
        err_console.print(f"{ags_}  [cyan]{phase:9}[/] {esc(text)}", highlight=False)

    def deploy_lines(ags_: str, kind: str, text: str) -> None:
        if kind != "start":
            err_console.print(f"{ags_}  deploy    {kind:6} {esc(text)}", highlight=False)

    if parallel == 1 or len(kommunen) == 1:

        def show_or_fail(ags_: str, phase: str, text: str) -> None:
            if phase == "failed":
                err_console.print(f"{ags_}  [red]failed[/]    {esc(text)}", highlight=False)
            else:
                show(ags_, phase, text)

        with LiveRun(out) as run_report:
            results = conv.converge_in_turn(
                kommunen,
                actor=who,
                target=tgt,
                desired_state=desired_state,
                mode=connection,
                run_report=run_report,
                report=show_or_fail,
                deploy_progress=deploy_lines,
            )
    else:

        def done(res: ConvergeResult) -> None:
            mark = "[green]ok[/]" if res.ok else "[red]failed[/]"
            err_console.print(f"{res.ags}  {mark}  {esc(res.error or '')}", highlight=False)

        results = conv.converge_many(
            kommunen,
            actor=who,
            target=tgt,
            desired_state=desired_state,
            mode=connection,
            parallel=parallel,
            report=show,
            on_result=done,
        )
    if fmt is not Format.table:
        found = [r.to_dict() for r in results]
        emit(found if len(found) != 1 else found[0], fmt)
    else:
        console.print(_results_table(results))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("configure")(configure)
    app.command("converge")(converge)
