"""Monthly and one-time estimates of a request from the catalog's list prices."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from basisit.catalog.models import Catalog, Plan, Service
from basisit.errors import ValidationFailed

CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PriceLine:
    description: str  # German: finance and the Kommune read it
    quantity: Decimal
    unit: str
    unit_price: Decimal
    monthly: Decimal
    one_time: Decimal

    def as_dict(self) -> dict[str, str]:
        return {
            "description": self.description,
            "quantity": str(self.quantity),
            "unit": self.unit,
            "unit_price": str(self.unit_price),
            "monthly": str(self.monthly),
            "one_time": str(self.one_time),
        }


@dataclass(frozen=True)
class Quote:
    lines: tuple[PriceLine, ...]
    valid_on: dt.date

    @property
    def monthly(self) -> Decimal:
        return money(sum((line.monthly for line in self.lines), Decimal(0)))

    @property
    def one_time(self) -> Decimal:
        return money(sum((line.one_time for line in self.lines), Decimal(0)))


def _quantity(value: Any) -> Decimal:
    if isinstance(value, list):
        return Decimal(len(value))
    return Decimal(str(value))


def quote(
    catalog: Catalog, service: Service, plan: Plan, parameters: dict[str, Any], on: dt.date
) -> Quote:
    """The estimate with the prices valid on `on`; an error if the plan has none yet."""
    price = plan.price_on(on)
    if price is None:
        first = min(p.valid_from for p in plan.prices)
        raise ValidationFailed(
            f"{service.id}/{plan.id} has no price valid on {on:%Y-%m-%d} (first price from {first})"
        )
    lines = [
        PriceLine(
            description=f"{service.name}, Paket {plan.name}: Grundpreis",
            quantity=Decimal(1),
            unit="Monat",
            unit_price=price.monthly_eur,
            monthly=money(price.monthly_eur),
            one_time=money(price.one_time_eur),
        )
    ]
    for metered in price.metered:
        qty = max(_quantity(parameters[metered.estimate_parameter]) - metered.included, Decimal(0))
        lines.append(
            PriceLine(
                description=f"{service.name}: {metered.unit} (geschätzt aus "
                f"{metered.estimate_parameter})",
                quantity=qty,
                unit=metered.unit,
                unit_price=metered.price_eur,
                monthly=money(qty * metered.price_eur),
                one_time=Decimal("0.00"),
            )
        )
    if service.resources.server:
        for extra in catalog.every_server_services:
            extra_plan = extra.plans[0]
            extra_price = extra_plan.price_on(on)
            if extra_price is None:
                continue
            lines.append(
                PriceLine(
                    description=f"{extra.name} (je Server)",
                    quantity=Decimal(1),
                    unit="Server-Monat",
                    unit_price=extra_price.monthly_eur,
                    monthly=money(extra_price.monthly_eur),
                    one_time=money(extra_price.one_time_eur),
                )
            )
    return Quote(lines=tuple(lines), valid_on=on)
