"""basisit request ... and basisit desired-state"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from basisit.app import views
from basisit.catalog import load_catalog
from basisit.cli.common import ACTOR_OPTION, Format, console, emit, group
from basisit.cli.render import Table, esc
from basisit.contracts import desired_state as contract1
from basisit.errors import BasisItError, ValidationFailed
from basisit.requests import desired_state
from basisit.requests import service as svc
from basisit.requests.pricing import Quote
from basisit.store.db import session_scope
from basisit.store.models import Request

app = group("Service requests of the Kommunen: create, submit, approve, follow.")

PARAM_OPTION = typer.Option(
    None, "--param", "-p", help="Parameter as name=value (lists: a,b,c); repeatable"
)


def _params(raw: list[str] | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in raw or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValidationFailed(f"--param {item!r} is not of the form name=value")
        if name.strip() in result:
            # Which one was meant? Guessing would store a value nobody checked.
            raise ValidationFailed(f"--param {name.strip()!r} is given more than once")
        result[name.strip()] = value.strip()
    return result


def _quote_table(req: Request, quote: Quote | None) -> Table:
    table = Table(title=esc(f"Request {req.id}: {req.service_id} {req.plan} for {req.instance}"))
    for col in ("Position", "Menge", "Einheit", "Preis/Einheit", "Monatlich", "Einmalig"):
        table.add_column(col, justify="left" if col in ("Position", "Einheit") else "right")
    lines = req.price_lines or []
    for line in lines:
        table.add_row(
            line["description"],
            line["quantity"],
            line["unit"],
            f"{Decimal(line['unit_price']):.2f}",
            line["monthly"],
            line["one_time"],
        )
    if quote is not None or lines:
        table.add_row(
            Text("Summe", style="bold"),
            "",
            "",
            "",
            Text(str(req.monthly_eur), style="bold"),
            Text(str(req.one_time_eur), style="bold"),
        )
    return table


@app.command()
def create(
    ags: str = typer.Option(..., "--ags", help="AGS of the Kommune"),
    service: str = typer.Option(..., "--service", help="Catalog service id"),
    plan: str = typer.Option(..., "--plan", help="Plan id of the service"),
    instance: str | None = typer.Option(None, "--instance", help="Name (default: service id)"),
    param: list[str] | None = PARAM_OPTION,
    schutzbedarf: str | None = typer.Option(
        None, "--schutzbedarf", help="normal, hoch or sehr hoch (default: the service's lowest)"
    ),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """A draft request for a new service."""
    catalog = load_catalog()
    with session_scope() as session:
        req = svc.create(
            session, catalog, ags=ags, service_id=service, plan=plan, instance=instance,
            parameters=_params(param), schutzbedarf=schutzbedarf, actor=svc.actor_name(actor),
        )  # fmt: skip
        console.print(
            f"[green]✓[/] request {req.id} (draft): {esc(req.service_id)} {esc(req.plan)} as "
            f"{esc(req.instance)} for {esc(req.ags)}; "
            f"submit it with: basisit request submit {req.id}"
        )


@app.command()
def change(
    ags: str = typer.Option(..., "--ags", help="AGS of the Kommune"),
    instance: str = typer.Option(..., "--instance", help="The service instance"),
    plan: str | None = typer.Option(None, "--plan"),
    param: list[str] | None = PARAM_OPTION,
    schutzbedarf: str | None = typer.Option(
        None, "--schutzbedarf", help="normal, hoch or sehr hoch (default: the service's lowest)"
    ),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """A draft request to change an existing service's plan, parameters or Schutzbedarf."""
    catalog = load_catalog()
    with session_scope() as session:
        req = svc.change(
            session, catalog, ags=ags, instance=instance, plan=plan,
            parameters=_params(param), schutzbedarf=schutzbedarf, actor=svc.actor_name(actor),
        )  # fmt: skip
        console.print(f"[green]✓[/] request {req.id} (draft): change of {esc(instance)}")


@app.command()
def decommission(
    ags: str = typer.Option(..., "--ags", help="AGS of the Kommune"),
    instance: str = typer.Option(..., "--instance", help="The service instance"),
    reason: str | None = typer.Option(None, "--reason"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """A draft request to take an existing service down."""
    catalog = load_catalog()
    with session_scope() as session:
        req = svc.decommission(
            session, catalog, ags=ags, instance=instance, actor=svc.actor_name(actor), reason=reason
        )
        console.print(f"[green]✓[/] request {req.id} (draft): decommission of {esc(instance)}")


@app.command()
def submit(
    request_ids: list[int] = typer.Argument(..., help="One or more drafts, checked together"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Check drafts against the catalog, price them, and hand them to eGo-Saar."""
    catalog = load_catalog()
    with session_scope() as session:
        results = svc.submit(session, catalog, request_ids, svc.actor_name(actor), dt.date.today())
        for req, quote in results:
            if req.kind != "decommission":
                console.print(_quote_table(req, quote))
            needed = svc.approvals_needed(req)
            console.print(
                f"[green]✓[/] request {req.id} submitted; approvals needed: {', '.join(needed)}"
            )


@app.command()
def approve(
    request_id: int,
    role: str = typer.Option("ops", "--as", help="ops (eGo-Saar) or finance"),
    comment: str | None = typer.Option(None, "--comment"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Approve a submitted request as eGo-Saar ops or as finance."""
    with session_scope() as session:
        req = svc.approve(
            session, svc.get(session, request_id), role, svc.actor_name(actor), comment
        )
        missing = svc.approvals_needed(req)
        state = req.state if not missing else f"{req.state}, still needs: {', '.join(missing)}"
        console.print(f"[green]✓[/] request {req.id} approved by {esc(role)} ({esc(state)})")


@app.command()
def reject(
    request_id: int,
    reason: str = typer.Option(..., "--reason"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Reject a submitted request, with the reason."""
    with session_scope() as session:
        req = svc.reject(session, svc.get(session, request_id), svc.actor_name(actor), reason)
        console.print(f"[green]✓[/] request {req.id} rejected")


@app.command()
def withdraw(
    request_id: int,
    reason: str | None = typer.Option(None, "--reason"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Withdraw a draft or submitted request."""
    with session_scope() as session:
        req = svc.withdraw(session, svc.get(session, request_id), svc.actor_name(actor), reason)
        console.print(f"[green]✓[/] request {req.id} withdrawn")


@app.command("list")
def list_requests(
    ags: str | None = typer.Option(None, "--ags"),
    state: str | None = typer.Option(None, "--state", help="Only requests in this state"),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Requests, newest last."""
    rows = views.requests(ags, state)
    if fmt is not Format.table:
        emit(rows, fmt)
        return
    table = Table(title=f"{len(rows)} requests")
    for col in ("ID", "AGS", "Kind", "Instance", "Service", "Plan", "State", "EUR/month"):
        table.add_column(col)
    for r in rows:
        state_text = r["state"]
        if r["approvals_missing"]:
            state_text += f" (needs {', '.join(r['approvals_missing'])})"
        table.add_row(
            str(r["id"]), r["ags"], r["kind"], r["instance"], r["service"], r["plan"],
            state_text, r["monthly_eur"] or "–",
        )  # fmt: skip
    console.print(table)


@app.command()
def show(request_id: int, fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """One request with its prices, approvals and audit trail."""
    with session_scope() as session:
        req = svc.get(session, request_id)
        data = views.request_summary(req)
        data["parameters"] = req.parameters
        data["price_lines"] = req.price_lines
        data["approvals"] = [
            {"role": a.role, "actor": a.actor, "at": str(a.at), "comment": a.comment}
            for a in req.approvals
        ]
        data["audit"] = [
            {"at": str(e.at), "actor": e.actor, "action": e.action, "from": e.from_state,
             "to": e.to_state, "reason": e.reason}
            for e in svc.audit_trail(session, request_id)
        ]  # fmt: skip
        if fmt is not Format.table:
            emit(data, fmt)
            return
        console.print(
            f"[bold]Request {req.id}[/] · {esc(req.kind)} {esc(req.service_id)} {esc(req.plan)} · "
            f"instance {esc(req.instance)} · Kommune {esc(req.ags)} · [bold]{esc(req.state)}[/]"
        )
        parameters = json.dumps(req.parameters, ensure_ascii=False)
        console.print(f"Parameters: {esc(parameters)}", highlight=False)
        console.print(f"Schutzbedarf: {esc(req.schutzbedarf)}")
        if req.error:
            console.print(f"[red]Error:[/] {esc(req.error)}", highlight=False)
        if req.price_lines:
            console.print(_quote_table(req, None))
        audit = Table(title="Audit trail")
        for col in ("When", "Who", "Action", "From", "To", "Why"):
            audit.add_column(col)
        for e in data["audit"]:
            audit.add_row(e["at"], e["actor"], e["action"], e["from"] or "", e["to"] or "",
                          e["reason"] or "")  # fmt: skip
        console.print(audit)


def desired_state_command(
    ags: str = typer.Option(..., "--ags", help="AGS of the Kommune"),
    fmt: Format = typer.Option(Format.yaml, "--format", help="yaml or json"),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file"),
) -> None:
    """The Kommune's desired state (contract 1), the input of deploy and configure."""
    document = desired_state.build(ags)
    if output:
        try:
            contract1.write(output, document, "json" if fmt is Format.json else "yaml")
        except OSError as exc:
            raise BasisItError(
                f"cannot write the desired state to {output}: {exc.strerror}"
            ) from exc
        console.print(f"[green]✓[/] desired state of {esc(ags)} written to {esc(output)}")
        return
    emit(document, Format.json if fmt is Format.json else Format.yaml)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="request")
    root.command("desired-state")(desired_state_command)
