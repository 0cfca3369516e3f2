"""basisit plan | deploy | drift | destroy | status | inventory | scrape-targets

Provisioning commands, top level because they are the suite's daily work. Progress goes to
stderr, results (tables, --format json/yaml) to stdout.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from basisit.app.sources import Source
from basisit.cli.common import ACTOR_OPTION, Format, console, emit, err_console
from basisit.cli.render import Table, esc, plain
from basisit.errors import BasisItError, ValidationFailed

if TYPE_CHECKING:  # imported when used: the stack driver loads Pulumi, which takes a while
    from basisit.app import fleet
    from basisit.provision.operations import Result

AGS_OPTION = typer.Option(None, "--ags", help="AGS of the Kommune")
DESIRED_OPTION = typer.Option(
    None,
    "--desired-state",
    help="Desired state file (YAML/JSON), or a folder of them for --all, instead of the "
    "request database; requests are then left as they are",
)
TARGET_OPTION = typer.Option(
    None, "--target", help="local (podman) or openstack; default $BASISIT_TARGET or local"
)
PARALLEL_OPTION = typer.Option(1, "--parallel", "-p", min=1, help="Kommunen at a time (--all)")
FORMAT_OPTION = typer.Option(Format.table, "--format")

_ACTION_STYLE = {
    "create": "green",
    "update": "yellow",
    "replace": "magenta",
    "delete": "red",
    "same": "dim",
}


def _source(path: Path | None) -> Source:
    return Source(path)


def _target(value: str | None) -> str:
    from basisit.provision import operations

    return operations.check_target(value) if value else operations.default_target()


def select_kommunen(ags: str | None, all_: bool, source: Source) -> list[str]:
    """--ags or --all; with --all, says which Kommunen are left out for having nothing to do."""
    from basisit.app.sources import select

    chosen = select(source, ags, all_)
    if chosen.idle:
        err_console.print(
            f"left out (nothing to deploy: no approved service, no stack): "
            f"{esc(', '.join(chosen.idle))}",
            highlight=False,
        )
    return chosen.kommunen


def _printer(prefix: bool) -> Callable[[str, str, str], None]:
    """Per-resource lines on stderr, e.g. '10046118  done  create PodmanServer ... (12.1s)'."""

    def show(ags: str, kind: str, text: str) -> None:
        if kind == "start":
            return
        style = {"done": "green", "failed": "bold red", "info": "cyan"}.get(kind, "")
        lead = f"{ags}  " if prefix else ""
        err_console.print(f"{lead}[{style}]{kind:6}[/] {esc(text)}", highlight=False)

    return show


def _fleet_progress(total: int, label: str) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn(f"{label} [progress.description]{{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def _run_fleet(
    operation: str, kommunen: list[str], options: fleet.Options, parallel: int
) -> list[Result]:
    from basisit.app import fleet

    with _fleet_progress(len(kommunen), operation) as bar:
        task = bar.add_task("", total=len(kommunen))
        running: dict[str, str] = {}

        def progress(ags: str, kind: str, text: str) -> None:
            running[ags] = text
            bar.update(task, description=f"{ags}: {text}"[:70])

        def on_result(res: Result) -> None:
            mark = "[green]ok[/]" if res.ok else "[bold red]failed[/]"
            detail = _counts(res.changes) if res.ok else res.error or ""
            took = f" {res.duration_s:.1f}s" if res.duration_s else ""
            bar.console.print(f"{esc(res.ags)}  {mark}{took}  {esc(detail)}", highlight=False)
            bar.advance(task)

        return fleet.run(
            operation,
            kommunen,
            options=options,
            parallel=parallel,
            progress=progress,
            on_result=on_result,
        )


def _path_text(path: Path | None) -> str | None:
    return str(path) if path else None


def _counts(changes: dict[str, int]) -> str:
    order = ["create", "update", "replace", "delete", "same"]
    parts = [f"{op} {changes[op]}" for op in order if changes.get(op)]
    parts += [f"{op} {n}" for op, n in changes.items() if op not in order and n]
    return ", ".join(parts) or "no resources"


def _steps_table(title: str, steps: list[dict[str, Any]], show_same: bool) -> Table:
    from basisit.provision.events import short_type

    table = Table(title=title)
    for col in ("Action", "Type", "Resource", "Changed fields"):
        table.add_column(col)
    for step in steps:
        op = step["op"]
        if op == "same" and not show_same:
            continue
        style = _ACTION_STYLE.get(op, "")
        table.add_row(
            plain(op, style),
            short_type(step["type"]),
            step["name"],
            ", ".join(step.get("diffs") or []),
        )
    return table


def _summary_table(title: str, results: list[Result]) -> Table:
    table = Table(title=title)
    for col in ("AGS", "Outcome", "create", "update", "replace", "delete", "same", "Seconds"):
        table.add_column(col, justify="left" if col in ("AGS", "Outcome") else "right")
    for res in results:
        ch = res.changes
        table.add_row(
            res.ags,
            plain("ok") if res.ok else plain(f"failed: {(res.error or '')[:60]}", "red"),
            *(str(ch.get(op, 0)) for op in ("create", "update", "replace", "delete", "same")),
            f"{res.duration_s:.1f}",
        )
    return table


def _emit_results(results: list[Result], fmt: Format) -> None:
    found = [r.to_dict() for r in results]
    emit(found if len(found) != 1 else found[0], fmt)


# --- commands --------------------------------------------------------------------------------


def plan(
    ags: str | None = AGS_OPTION,
    all_: bool = typer.Option(False, "--all", help="Every onboarded Kommune (or every file)"),
    desired_state: Path | None = DESIRED_OPTION,
    target: str | None = TARGET_OPTION,
    parallel: int = PARALLEL_OPTION,
    all_resources: bool = typer.Option(False, "--show-same", help="List unchanged resources too"),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Preview what a deploy would create, change and delete; changes nothing."""
    from basisit.app import deploy as deploying
    from basisit.app import fleet

    source = _source(desired_state)
    kommunen = select_kommunen(ags, all_, source)
    tgt = _target(target)
    if len(kommunen) == 1:
        with err_console.status(f"planning AGS {kommunen[0]} on target {tgt} ..."):
            results = [deploying.plan(kommunen[0], source, target=tgt)]
    else:
        options = fleet.Options(target=tgt, desired_state=_path_text(desired_state))
        results = _run_fleet("plan", kommunen, options, parallel)
    if fmt is not Format.table:
        _emit_results(results, fmt)
    elif len(results) == 1:
        res = results[0]
        if all_resources or any(s["op"] != "same" for s in res.steps):
            title = f"Plan for AGS {res.ags} ({tgt})"
            console.print(_steps_table(title, res.steps, all_resources))
        else:
            console.print(f"AGS {esc(res.ags)}: no changes", highlight=False)
        console.print(f"Summary: {_counts(res.changes)}")
    else:
        console.print(_summary_table(f"Plan for {len(results)} Kommunen ({tgt})", results))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def deploy(
    ags: str | None = AGS_OPTION,
    all_: bool = typer.Option(False, "--all", help="Every onboarded Kommune (or every file)"),
    desired_state: Path | None = DESIRED_OPTION,
    target: str | None = TARGET_OPTION,
    parallel: int = PARALLEL_OPTION,
    refresh: bool = typer.Option(
        True, "--refresh/--no-refresh", help="Read the real state first (repairs drift)"
    ),
    actor: str | None = ACTOR_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Create or update the Kommune's infrastructure and write its stack outputs."""
    from basisit.app import deploy as deploying
    from basisit.app import fleet
    from basisit.requests.service import actor_name

    source = _source(desired_state)
    kommunen = select_kommunen(ags, all_, source)
    tgt = _target(target)
    who = actor_name(actor)
    if len(kommunen) == 1:
        err_console.print(f"deploying AGS {esc(kommunen[0])} on target {esc(tgt)}", highlight=False)
        with err_console.status("pulumi up ..."):
            result = deploying.deploy(
                kommunen[0], source, target=tgt, actor=who, refresh=refresh,
                progress=_printer(prefix=False),
            )  # fmt: skip
        results = [result]
    else:
        options = fleet.Options(target=tgt, actor=who, refresh=refresh,
                                desired_state=_path_text(desired_state))  # fmt: skip
        results = _run_fleet("deploy", kommunen, options, parallel)
    if fmt is not Format.table:
        _emit_results(results, fmt)
    elif len(results) == 1:
        res = results[0]
        if res.recovery:
            console.print(f"[cyan]recovered:[/] {esc(res.recovery)}")
        console.print(
            f"AGS {res.ags} deployed in {res.duration_s:.1f}s: {_counts(res.changes)}; "
            f"{res.resource_count} resources; outputs in {res.outputs_file}",
            highlight=False,
        )
    else:
        console.print(_summary_table(f"Deploy of {len(results)} Kommunen ({tgt})", results))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def drift(
    ags: str | None = typer.Option(None, "--ags", help="Only this Kommune (default: every stack)"),
    parallel: int = PARALLEL_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Compare reality with the stacks' state (read-only); exit code 2 when they differ."""
    from basisit.app import fleet
    from basisit.provision import operations
    from basisit.provision.errors import DriftFound

    kommunen = [ags.strip()] if ags else operations.deployed_stacks()
    if not kommunen:
        console.print("no stacks deployed")
        return
    if len(kommunen) == 1:
        with err_console.status(f"refreshing AGS {kommunen[0]} (preview only) ..."):
            results = [operations.drift(kommunen[0])]
    else:
        results = _run_fleet("drift", kommunen, fleet.Options(), parallel)
    drifted = [r for r in results if r.ok and r.steps]
    failed = [r for r in results if not r.ok]
    if fmt is not Format.table:
        _emit_results(results, fmt)
    else:
        for res in results:
            if not res.ok:
                continue
            if res.steps:
                console.print(_steps_table(f"Drift in AGS {res.ags}", res.steps, False))
            else:
                console.print(f"AGS {esc(res.ags)}: no drift", highlight=False)
    if failed:
        raise typer.Exit(1)
    if drifted:
        raise DriftFound(
            f"drift in {len(drifted)} Kommune(n): {', '.join(r.ags for r in drifted)}; "
            "`basisit deploy --ags AGS` brings them back to their desired state"
        )


def destroy(
    ags: str = typer.Option(..., "--ags", help="AGS of the Kommune"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Remove all of a Kommune's infrastructure, its volumes (and their data) included."""
    from basisit.app import deploy as deploying
    from basisit.provision import operations
    from basisit.requests.service import actor_name

    ags = ags.strip()
    if ags not in operations.deployed_stacks():
        raise BasisItError(f"AGS {ags} has no stack: nothing was deployed for it")
    if not yes:
        if not sys.stdin.isatty():
            raise ValidationFailed(f"destroying AGS {ags} needs confirmation: add --yes")
        typer.confirm(
            f"Destroy every server, network and volume (with its data) of AGS {ags}?",
            abort=True,
        )
    with err_console.status(f"destroying AGS {ags} ..."):
        result = deploying.destroy(
            ags, actor=actor_name(None), progress=_printer(prefix=False)
        ).to_dict()
    if fmt is not Format.table:
        emit(result, fmt)
    else:
        console.print(
            f"AGS {ags} destroyed in {result['duration_s']:.1f}s: {_counts(result['changes'])}",
            highlight=False,
        )


def status_cmd(fmt: Format = FORMAT_OPTION) -> None:
    """Per Kommune: last deployment, resource count, outcome."""
    from basisit.app import status

    rows = [r.to_dict() for r in status.deployments()]
    if fmt is not Format.table:
        emit(rows, fmt)
        return
    if not rows:
        console.print("nothing deployed yet")
        return
    table = Table(title="Deployments")
    for col in ("AGS", "Target", "Last change", "At", "Outcome", "Resources", "Error"):
        table.add_column(col, justify="right" if col == "Resources" else "left")
    for r in rows:
        style = {"succeeded": "green", "failed": "red", "interrupted": "yellow"}.get(r["outcome"])
        table.add_row(
            r["ags"],
            r["target"] or "-",
            r["last_operation"] or "-",
            r["finished_at"] or "-",
            plain(r["outcome"], style),
            "-" if r["resource_count"] is None else str(r["resource_count"]),
            (r["error"] or "")[:60],
        )
    console.print(table)


def inventory(
    ags: str = typer.Option(..., "--ags", help="AGS of the Kommune"),
    desired_state: Path | None = typer.Option(
        None, "--desired-state", help="Desired state file instead of the request database"
    ),
    fmt: Format = typer.Option(Format.yaml, "--format"),
) -> None:
    """The Ansible inventory generated from the Kommune's stack outputs (contract 2)."""
    from basisit.configure import inventory as inv

    ags = ags.strip()
    outputs_doc = inv.load_outputs(ags)
    desired = inv.load_desired(ags, desired_state) if desired_state else Source(None).desired(ags)
    emit(inv.build_inventory(outputs_doc, desired), fmt if fmt is not Format.table else Format.yaml)


def scrape_targets(
    ags: list[str] | None = typer.Option(
        None, "--ags", help="Only this Kommune (repeatable); default: every deployed one"
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Write a Prometheus file_sd file (.json, .yml, .yaml), replaced atomically",
    ),
    fmt: Format = typer.Option(Format.json, "--format", help="Without --output: how to print"),
) -> None:
    """Prometheus scrape targets (every server's node exporter) from the stack outputs."""
    from basisit.monitoring import targets

    if output is not None:
        targets.check_path(output)
    found = targets.collect(ags or None)
    for note in found.notes:
        err_console.print(f"[yellow]note:[/] {esc(note)}", highlight=False)
    summary = f"{len(found.groups)} targets of {len(found.kommunen)} Kommune(n)"
    if output is not None:
        targets.write(output, found.groups)
        err_console.print(f"{esc(summary)} written to {esc(output)}", highlight=False)
    elif fmt is Format.table:
        table = Table(title=f"Scrape targets: {summary}")
        for col in ("AGS", "Kommune", "Server", "Service", "Target"):
            table.add_column(col)
        for group in found.groups:
            labels = group["labels"]
            table.add_row(
                labels["ags"],
                labels.get("kommune", "-"),
                labels["server"],
                labels["catalog_service"],
                f"{group['targets'][0]}{labels['__metrics_path__']}",
            )
        console.print(table)
    else:
        emit(found.groups, fmt)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("deploy")(deploy)
    app.command("drift")(drift)
    app.command("destroy")(destroy)
    app.command("status")(status_cmd)
    app.command("inventory")(inventory)
    app.command("scrape-targets")(scrape_targets)
