"""A month priced and allocated to the cent (the rules: docs/billing.md).

Direct charges per instance — base price and monitoring per server pro rata of billable
seconds, metered usage above the prorated included quantity, one-time fees — from the month's
usage document (contract 3) and the catalog prices valid that month; then the month's share
of the yearly overhead split over the participating Kommunen by the key. Exact `Fraction`s
throughout; cents only at the end, by the two rounding rules of `money`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

from basisit import units
from basisit.billing import money
from basisit.billing.config import BillingConfig, Key
from basisit.billing.model import BASE, METERED, MONITORING, ONE_TIME, KommuneBill, Line, MonthBill
from basisit.catalog import Catalog
from basisit.catalog.models import Plan, Price, Service
from basisit.contracts import usage
from basisit.errors import NotFound, ValidationFailed
from basisit.kommunen import Kommune

Registry = Callable[[str], Kommune]


def month_overhead_cents(yearly_cent: int, month: int) -> int:
    """The month's part of a yearly budget: twelve equal shares by largest remainder, the
    cents left over to the earlier months."""
    return money.largest_remainder(yearly_cent, [Fraction(yearly_cent, 12)] * 12)[month - 1]


def allocate(
    doc: usage.Usage,
    catalog: Catalog,
    config: BillingConfig,
    registry: Registry,
    *,
    running: bool = False,
) -> MonthBill:
    """The month of the usage document, billed. `running`: the month is not over."""
    year, month = (int(p) for p in doc["month"].split("-"))
    first_day = dt.date(year, month, 1)
    month_s = doc["period"]["hours"] * 3600
    key = config.key_on(first_day)
    overhead = config.overhead_on(first_day)
    if key is None or overhead is None:
        missing = "key" if key is None else "overhead"
        raise ValidationFailed(f"billing.yaml: no {missing} valid in {doc['month']}")
    monitoring = _monitoring_price(catalog, first_day, doc["month"])
    drafts: list[tuple[Kommune, Fraction, list[Line]]] = []
    for entry in doc["kommunen"]:
        kommune = registry(entry["ags"])
        lines: list[Line] = []
        for inst in entry["instances"]:
            lines.extend(_instance_lines(inst, catalog, first_day, doc["month"], month_s,
                                         monitoring))  # fmt: skip
        participation = Fraction(_billable_seconds(entry), month_s)
        drafts.append((kommune, min(participation, Fraction(1)), lines))
    pool = month_overhead_cents(overhead.yearly_cent, month)
    direct = {k.ags: sum((d.exact for d in lines), Fraction(0)) for k, _p, lines in drafts}
    weights, method_used = _weights(key, [(k, p) for k, p, _ in drafts], direct)
    total_weight = sum(weights.values(), Fraction(0))
    order = sorted(weights, key=lambda ags: (ags,))  # ties to the smaller AGS, as a string
    shares = {a: Fraction(pool) * weights[a] / total_weight for a in order} if total_weight else {}
    overhead_cents = dict(zip(order, money.largest_remainder(pool, [shares[a] for a in order]),
                              strict=True)) if shares else {}  # fmt: skip
    bills = []
    for kommune, participation, lines in sorted(drafts, key=lambda d: d[0].ags):
        exact = direct[kommune.ags]
        cents_total = money.round_half_up(exact * 100)
        cents = money.largest_remainder(cents_total, [d.exact * 100 for d in lines])
        bills.append(
            KommuneBill(
                ags=kommune.ags,
                name=kommune.name,
                typ=kommune.typ,
                einwohner=kommune.einwohner,
                participation=participation,
                weight=weights.get(kommune.ags, Fraction(0)),
                lines=tuple(replace(d, cents=c) for d, c in zip(lines, cents, strict=True)),
                direct_exact=exact,
                direct_cents=cents_total,
                overhead_exact=shares.get(kommune.ags, Fraction(0)) / 100,
                overhead_cents=overhead_cents.get(kommune.ags, 0),
            )
        )
    start = dt.datetime.fromisoformat(doc["period"]["start"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(doc["period"]["end"].replace("Z", "+00:00"))
    provisional = running or any(
        line["provisional_hours"] for k in doc["kommunen"] for i in k["instances"]
        for line in i["lines"]
    )  # fmt: skip
    bill = MonthBill(
        month=doc["month"],
        start=start,
        end=end,
        hours=doc["period"]["hours"],
        provisional=provisional,
        key=key,
        method_used=method_used,
        pool_cents=pool,
        unallocated_cents=0 if shares else pool,
        kommunen=tuple(bills),
    )
    problems = bill.reconciles()
    if problems:  # a bug, never bad input: refuse to report figures that do not add up
        raise AssertionError("; ".join(problems))
    return bill


def _billable_seconds(entry: usage.Kommune) -> int:
    """Seconds of the month in which the Kommune had at least one billable instance."""
    given = entry.get("billable_seconds")
    if isinstance(given, int):
        return given
    return max(
        (line["quantity_base"] for inst in entry["instances"] for line in inst["lines"]
         if line["unit"] == units.BETRIEBSSTUNDE),
        default=0,
    )  # fmt: skip


def _weights(
    key: Key, participants: list[tuple[Kommune, Fraction]], direct: dict[str, Fraction]
) -> tuple[dict[str, Fraction], str]:
    """Each participant's weight in the key (they need not add up to 1: shares are
    normalised), and the method actually used."""
    active = [(k, p) for k, p in participants if p > 0]
    if not active:
        return {}, key.method
    if key.method == "equal":
        return {k.ags: p for k, p in active}, "equal"
    if key.method == "usage":
        weights = {k.ags: direct[k.ags] * p for k, p in active}
        if any(weights.values()):
            return weights, "usage"
        # Nobody has direct charges: the default key, so that no overhead vanishes.
    sockel = {k.ags: p for k, p in active}
    people = {k.ags: _inhabitants(k, key) * p for k, p in active}
    total_p = sum(sockel.values(), Fraction(0))
    total_people = sum(people.values(), Fraction(0))
    inhabitants_part = 1 - key.sockel_share
    weights = {}
    for ags in sockel:
        w = key.sockel_share * sockel[ags] / total_p
        # No inhabitants at all among the participants: that part by participation too.
        w += inhabitants_part * (
            people[ags] / total_people if total_people else sockel[ags] / total_p
        )
        weights[ags] = w
    return weights, "default"


def _inhabitants(kommune: Kommune, key: Key) -> Fraction:
    if kommune.is_kreis:
        return kommune.einwohner * key.kreis_inhabitants_fraction
    return Fraction(kommune.einwohner)


def _monitoring_price(catalog: Catalog, day: dt.date, month: str) -> tuple[Service, Plan, Price]:
    services = catalog.every_server_services
    if not services:
        raise NotFound("the catalog has no service that applies to every server (monitoring)")
    service = services[0]
    plan = service.plans[0]
    price = plan.price_on(day)
    if price is None:
        raise ValidationFailed(
            f"{service.id} plan {plan.id} has no price valid in {month}: set one in the catalog"
        )
    return service, plan, price


@dataclass(frozen=True)
class _Source:
    """What every line of one ledger line shares: the instance, plan, requests and flags."""

    instance: str
    service_id: str
    service_name: str
    plan: str
    plan_name: str
    request_ids: tuple[int, ...]
    ledger_unit: str
    ledger_quantity_base: int
    gap_hours: int = 0
    no_measurement_hours: int = 0
    provisional_hours: int = 0


def _draft(
    src: _Source,
    *,
    kind: str,
    description: str,
    quantity: Fraction,
    unit: str,
    unit_price: Decimal,
    exact: Fraction,
    seconds: int,
    included: Fraction = Fraction(0),
) -> Line:
    """A line before its cents are known (0 until the Kommune's rounding gives them)."""
    return Line(
        kind=kind, instance=src.instance, service_id=src.service_id,
        service_name=src.service_name, plan=src.plan, plan_name=src.plan_name,
        description=description, quantity=quantity, unit=unit, unit_price=unit_price,
        included=included, exact=exact, cents=0, seconds=seconds, request_ids=src.request_ids,
        ledger_unit=src.ledger_unit, ledger_quantity_base=src.ledger_quantity_base,
        gap_hours=src.gap_hours, no_measurement_hours=src.no_measurement_hours,
        provisional_hours=src.provisional_hours,
    )  # fmt: skip


def _instance_lines(
    inst: usage.Instance,
    catalog: Catalog,
    day: dt.date,
    month: str,
    month_s: int,
    monitoring: tuple[Service, Plan, Price],
) -> list[Line]:
    service = catalog.service(inst["catalog_service"])
    if service is None:
        raise NotFound(
            f"instance {inst['instance']}: service {inst['catalog_service']!r} is not in the "
            "catalog"
        )
    drafts: list[Line] = []
    seconds_of: dict[str, int] = {}
    for line in inst["lines"]:
        if line["unit"] == units.BETRIEBSSTUNDE:
            seconds_of[line["plan"]] = seconds_of.get(line["plan"], 0) + line["quantity_base"]
    server_seconds = 0
    server_flags = [0, 0, 0]  # gap, no measurement, provisional hours of its base lines
    for line in inst["lines"]:
        plan = service.plan(line["plan"])
        if plan is None:
            raise NotFound(f"instance {inst['instance']}: plan {line['plan']!r} of "
                           f"{service.id} is not in the catalog")  # fmt: skip
        price = plan.price_on(day)
        if price is None:
            raise ValidationFailed(
                f"{service.id} plan {plan.id} (used by {inst['instance']}) has no price valid "
                f"in {month}: set one in the catalog"
            )
        own = (line["gap_hours"], line["no_measurement_hours"], line["provisional_hours"])
        src = _Source(
            inst["instance"], service.id, service.name, plan.id, plan.name,
            tuple(line["request_ids"]), line["unit"], line["quantity_base"], *own,
        )  # fmt: skip
        if line["unit"] == units.BETRIEBSSTUNDE:
            seconds = line["quantity_base"]
            share = Fraction(seconds, month_s)
            drafts.append(_draft(
                src, kind=BASE, description=f"{service.name} – {plan.name}", quantity=share,
                unit="Monat", unit_price=price.monthly_eur,
                exact=share * Fraction(price.monthly_eur), seconds=seconds,
            ))  # fmt: skip
            if service.resources.server:
                server_seconds += seconds
                server_flags = [a + b for a, b in zip(server_flags, own, strict=True)]
        elif line["unit"] == units.EINRICHTUNG:
            amount = Fraction(line["amount_cent"] or 0, 100)
            drafts.append(_draft(
                src, kind=ONE_TIME, description=f"Einrichtung {service.name} – {plan.name}",
                quantity=Fraction(line["quantity_base"]), unit=units.EINRICHTUNG,
                unit_price=Decimal(line["amount_cent"] or 0) / 100, exact=amount, seconds=0,
            ))  # fmt: skip
        else:
            metered = next((m for m in price.metered if m.unit == line["unit"]), None)
            if metered is None:
                raise ValidationFailed(
                    f"{service.id} plan {plan.id}: the price valid in {month} has no unit "
                    f"{line['unit']!r} that the ledger measured for {inst['instance']}"
                )
            used = units.exact_in_catalog_unit(
                line["unit"], line["base_unit"], line["quantity_base"], month_s
            )
            included = Fraction(metered.included) * seconds_of.get(plan.id, 0) / month_s
            billable = max(Fraction(0), used - included)
            drafts.append(_draft(
                src, kind=METERED, description=f"{service.name} – {line['unit']}",
                quantity=used, unit=line["unit"], unit_price=metered.price_eur,
                included=included, exact=billable * Fraction(metered.price_eur),
                seconds=seconds_of.get(plan.id, 0),
            ))  # fmt: skip
    if server_seconds:
        m_service, m_plan, m_price = monitoring
        share = Fraction(server_seconds, month_s)
        requests = tuple(sorted({r for ln in inst["lines"] for r in ln["request_ids"]}))
        server = _Source(inst["instance"], m_service.id, m_service.name, m_plan.id, m_plan.name,
                         requests, units.BETRIEBSSTUNDE, server_seconds, *server_flags)  # fmt: skip
        drafts.append(_draft(
            server, kind=MONITORING, description=f"{m_service.name} (je Server)",
            quantity=share, unit="Monat", unit_price=m_price.monthly_eur,
            exact=share * Fraction(m_price.monthly_eur), seconds=server_seconds,
        ))  # fmt: skip
    return drafts
