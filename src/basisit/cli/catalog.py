"""basisit catalog list|show|validate"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from basisit import paths
from basisit.billing import config as billing_config
from basisit.billing import funding
from basisit.catalog import load_catalog, validate_catalog
from basisit.catalog.load import CONSEQUENCE
from basisit.cli.common import Format, console, emit, err_console, group
from basisit.cli.render import Table, esc
from basisit.errors import ValidationFailed

app = group("The service catalog: services, plans, prices.")

DIR_OPTION = typer.Option(None, "--dir", help="Catalog folder (default: catalog/ of the project)")


@app.command("list")
def list_services(directory: Path | None = DIR_OPTION) -> None:
    """All services with their plans and current monthly base prices."""
    catalog = load_catalog(directory)
    today = dt.date.today()
    table = Table(title=f"Basis-IT catalog {catalog.settings.catalog_version}")
    for col in ("Service", "Name", "Plans (EUR/month)", "Schutzbedarf", "Depends on", "Roles"):
        # A plan and its price on one line; ids must not break in the middle.
        table.add_column(col, no_wrap=col in ("Service", "Plans (EUR/month)"))
    for service in sorted(catalog.services.values(), key=lambda s: s.id):
        plans = []
        for plan in service.plans:
            price = plan.price_on(today)
            plans.append(f"{plan.id} {f'{price.monthly_eur:.2f}' if price else '–'}")
        deps = [*service.dependencies.all_of]
        if service.dependencies.any_of:
            deps.append("one of: " + ", ".join(service.dependencies.any_of))
        table.add_row(
            service.id + ("" if service.requestable else "\n(every server)"),
            service.name,
            "\n".join(plans),
            ", ".join(service.schutzbedarf),
            "\n".join(deps) or "–",
            ", ".join(service.roles) or "–",
        )
    console.print(table)


@app.command()
def show(
    service_id: str,
    directory: Path | None = DIR_OPTION,
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """One service in full: plans, prices over time, parameters, resources."""
    catalog = load_catalog(directory)
    service = catalog.service(service_id)
    if service is None:
        from basisit.errors import NotFound

        raise NotFound(
            f"unknown service {service_id!r} (catalog has: {', '.join(sorted(catalog.services))})"
        )
    if fmt is not Format.table:
        emit(service.model_dump(mode="json"), fmt)
        return
    console.print(
        f"[bold]{esc(service.name)}[/] ({esc(service.id)}, version {esc(service.version)})"
    )
    console.print(esc(service.description))
    console.print(
        esc(
            f"Schutzbedarf: {', '.join(service.schutzbedarf)} · finance approval above "
            f"{catalog.finance_threshold(service)} EUR/month · "
            f"roles: {', '.join(service.roles) or '–'}"
        )
    )
    prices = Table(title="Plans and prices")
    for col in ("Plan", "Name", "Flavor", "Valid from", "Monthly", "One-time", "Metered"):
        prices.add_column(col)
    for plan in service.plans:
        for price in sorted(plan.prices, key=lambda p: p.valid_from):
            metered = "\n".join(f"{m.price_eur:.2f} EUR/{m.unit}" for m in price.metered) or "–"
            prices.add_row(
                plan.id, plan.name, plan.flavor or "–", str(price.valid_from),
                f"{price.monthly_eur:.2f}", f"{price.one_time_eur:.2f}", metered,
            )  # fmt: skip
    console.print(prices)
    if service.parameters:
        table = Table(title="Parameters")
        for col in ("Name", "Type", "Range", "Default", "Description"):
            table.add_column(col)
        for name, p in service.parameters.items():
            bounds = (
                f"{p.minimum:g}..{p.maximum:g}" if p.minimum is not None and p.maximum is not None
                else f"{p.min_items or 0}..{p.max_items} entries" if p.type == "list"
                else p.pattern or "–"
            )  # fmt: skip
            table.add_row(name, p.type, bounds, str(p.default), p.description)
        console.print(table)


@app.command()
def validate(directory: Path | None = DIR_OPTION) -> None:
    """Check every catalog file; list every problem with file and field."""
    problems = validate_catalog(directory)
    try:
        settings = billing_config.load((directory or paths.catalog_dir()) / billing_config.FILE)
    except ValidationFailed as exc:
        problems.append(str(exc))
    else:
        if not problems:  # the funding's services are checked against a valid catalog
            problems += funding.unknown_services(settings.funding, load_catalog(directory))
    if problems:
        for problem in problems:
            err_console.print(f"[red]✗[/] {esc(problem)}", highlight=False, soft_wrap=True)
        follow = sum(1 for p in problems if CONSEQUENCE in p)
        note = f", {follow} of them consequences of the others" if follow else ""
        err_console.print(f"[bold red]{len(problems)} problem(s) in the catalog{note}[/]")
        raise typer.Exit(4)
    catalog = load_catalog(directory)
    plans = sum(len(s.plans) for s in catalog.services.values())
    console.print(f"[green]✓[/] catalog is valid: {len(catalog.services)} services, {plans} plans")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="catalog")
