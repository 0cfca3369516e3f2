"""basisit kommunen list|show|onboard|offboard"""

from __future__ import annotations

import typer

from basisit import kommunen as registry
from basisit.address import Address
from basisit.app import views
from basisit.cli.common import ACTOR_OPTION, Format, console, emit, group
from basisit.cli.render import Table, esc
from basisit.errors import ValidationFailed
from basisit.requests import onboarding as onb
from basisit.requests.service import actor_name
from basisit.store.db import session_scope

app = group("The Saarland's Kommunen and their onboarding.")


@app.command("list")
def list_kommunen(
    kreis: str | None = typer.Option(None, help="Only this Kreis (name or Kreisschlüssel)"),
    onboarded: bool | None = typer.Option(
        None, "--onboarded/--not-onboarded", help="Only onboarded / only not onboarded"
    ),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """All 58 Kommunen, or those matching the filters."""
    rows = [r.to_dict() for r in views.kommunen(kreis, onboarded)]
    if fmt is not Format.table:
        emit(rows, fmt)
        return
    table = Table(title=f"{len(rows)} Kommunen")
    for col in ("AGS", "Name", "Typ", "Kreis", "Einwohner", "Onboarded"):
        table.add_column(col, justify="right" if col == "Einwohner" else "left")
    for r in rows:
        table.add_row(
            r["ags"], r["name"], r["typ"], r["kreis"], f"{r['einwohner']:,}".replace(",", "."),
            "yes" if r["onboarded"] else "–",
        )  # fmt: skip
    console.print(table)


@app.command()
def show(ags: str, fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """One Kommune: registry data, onboarding, services."""
    data = views.kommune(ags)
    if fmt is not Format.table:
        emit(data, fmt)
        return
    table = Table(show_header=False, title=esc(f"{data['name']} ({data['ags']})"))
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        if key == "services":
            value = "\n".join(f"{n}: {v}" for n, v in value.items()) or "–"
        table.add_row(key, str(value))
    console.print(table)


@app.command()
def onboard(
    ags: str,
    contact_name: str = typer.Option(..., "--contact-name"),
    contact_email: str = typer.Option(..., "--contact-email"),
    cost_centre: str = typer.Option(..., "--cost-centre"),
    billing_address: str | None = typer.Option(
        None, "--billing-address", help="'Straße Nr, PLZ Ort' (or --street, --postcode, --town)"
    ),
    street: str | None = typer.Option(None, "--street", help="Street and house number"),
    postcode: str | None = typer.Option(None, "--postcode"),
    town: str | None = typer.Option(None, "--town"),
    country: str = typer.Option("DE", "--country", help="ISO 3166 code"),
    leitweg_id: str = typer.Option(..., "--leitweg-id", help="Routing ID for e-invoices"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Take a Kommune on board: it can then request services."""
    address: str | Address
    if billing_address is not None and not (street or postcode or town):
        address = billing_address
    elif billing_address is None and street and postcode and town:
        address = Address(street.strip(), postcode.strip(), town.strip(), country.strip().upper())
    else:
        raise ValidationFailed(
            "give the billing address either as --billing-address 'Straße Nr, PLZ Ort' or as "
            "--street, --postcode and --town, not both and not in part"
        )
    with session_scope() as session:
        record = onb.onboard(
            session,
            ags=ags,
            contact_name=contact_name,
            contact_email=contact_email,
            cost_centre=cost_centre,
            billing_address=address,
            leitweg_id=leitweg_id,
            actor=actor_name(actor),
        )
        console.print(
            f"[green]✓[/] {esc(registry.get(record.ags).name)} ({record.ags}) is onboarded"
        )


@app.command()
def offboard(
    ags: str,
    reason: str | None = typer.Option(None, "--reason"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """End a Kommune's participation (after all its services are decommissioned)."""
    with session_scope() as session:
        onb.offboard(session, ags=ags, actor=actor_name(actor), reason=reason)
    kommune = registry.get(ags)
    console.print(f"[green]✓[/] {esc(kommune.name)} ({kommune.ags}) is offboarded")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="kommunen")
