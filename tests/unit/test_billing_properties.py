"""Property tests of the allocation: for random Kommunen, usage, prices and keys, every pool
is allocated to the cent, no share is negative and nothing is lost."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from basisit import kommunen
from basisit.billing.allocate import allocate
from basisit.billing.config import BillingConfig, Key, Overhead
from basisit.catalog import Catalog, load_catalog

M = 2_682_000  # October 2026: 745 hours
SERVICES = ("fileshare", "database", "directory", "mail", "vpn", "webhosting", "dns")


@cache
def _catalog() -> Catalog:
    return load_catalog()


def _scaled(catalog: Catalog, scale: Decimal, included: Decimal) -> Catalog:
    """The catalog with every price times `scale` (to the cent) and `included` units in
    every metered price."""
    services = {}
    for sid, service in catalog.services.items():
        plans = []
        for plan in service.plans:
            prices = tuple(
                p.model_copy(update={
                    "monthly_eur": (p.monthly_eur * scale).quantize(Decimal("0.01")),
                    "metered": tuple(
                        m.model_copy(update={"price_eur": m.price_eur * scale,
                                             "included": included})
                        for m in p.metered
                    ),
                })
                for p in plan.prices
            )  # fmt: skip
            plans.append(plan.model_copy(update={"prices": prices}))
        services[sid] = service.model_copy(update={"plans": tuple(plans)})
    return catalog.model_copy(update={"services": services})


def _line(unit: str, plan: str, base: str, quantity: int, **extra: Any) -> dict[str, Any]:
    return {
        "unit": unit, "plan": plan, "request_ids": [1], "metric": None, "base_unit": base,
        "quantity_base": quantity, "quantity": "0", "hours": 1, "gap_hours": 0,
        "no_measurement_hours": 0, "provisional_hours": 0, "amount_cent": None, **extra,
    }  # fmt: skip


@st.composite
def months(draw: st.DrawFn) -> dict[str, Any]:
    catalog = _catalog()
    registry = kommunen.all_kommunen()
    chosen = draw(st.lists(st.sampled_from(registry), min_size=1, max_size=8,
                           unique_by=lambda k: k.ags))  # fmt: skip
    entries = []
    for kommune in chosen:
        instances = []
        longest = 0
        for n in range(draw(st.integers(0, 3))):
            service = catalog.service(draw(st.sampled_from(SERVICES)))
            assert service is not None
            plan = draw(st.sampled_from(service.plans))
            price = plan.price_on(dt.date(2026, 10, 1))
            assert price is not None
            seconds = draw(st.integers(0, M))
            longest = max(longest, seconds)
            lines = [_line("Betriebsstunde", plan.id, "s", seconds)]
            for metered in price.metered:
                base = "byte_s" if metered.metric.endswith("_bytes") else "count_s"
                per_second = draw(st.integers(0, 2**40 if base == "byte_s" else 5000))
                lines.append(_line(metered.unit, plan.id, base, per_second * seconds,
                                   gap_hours=draw(st.integers(0, 5))))  # fmt: skip
            if draw(st.booleans()):
                lines.append(_line("Einrichtung", plan.id, "count", 1,
                                   amount_cent=draw(st.integers(0, 100_000))))  # fmt: skip
            instances.append({"instance": f"i{n}", "catalog_service": service.id, "lines": lines})
        entries.append({"ags": kommune.ags, "name": kommune.name,
                        "billable_seconds": longest, "instances": instances})  # fmt: skip
    return {
        "schema_version": 1, "month": "2026-10",
        "period": {"start": "2026-09-30T22:00:00Z", "end": "2026-10-31T23:00:00Z",
                   "hours": 745, "timezone": "Europe/Berlin"},
        "generated_at": "2026-11-01T00:10:00Z", "kommunen": entries,
    }  # fmt: skip


keys = st.builds(
    lambda method, sockel, kreis: Key(dt.date(2026, 1, 1), method,
                                      Fraction(sockel, 100), Fraction(kreis, 100)),
    st.sampled_from(("default", "equal", "usage")), st.integers(0, 100), st.integers(0, 100),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=months(),
    key=keys,
    yearly_cent=st.integers(0, 10**9),
    scale=st.decimals(min_value=0, max_value=10, places=2),
    included=st.decimals(min_value=0, max_value=500, places=1),
)
def test_every_pool_is_allocated_to_the_cent(
    doc: dict[str, Any], key: Key, yearly_cent: int, scale: Decimal, included: Decimal
) -> None:
    config = BillingConfig((Overhead(dt.date(2026, 1, 1), yearly_cent),), (key,))
    bill = allocate(doc, _scaled(_catalog(), scale, included), config, kommunen.get)
    assert bill.reconciles() == []
    # The month's overhead: all of it to the participants, or all of it "nicht verteilt".
    participants = [k for k in bill.kommunen if k.participation > 0]
    if participants:
        assert bill.overhead_cents == bill.pool_cents and bill.unallocated_cents == 0
    else:
        assert bill.unallocated_cents == bill.pool_cents and bill.overhead_cents == 0
    for k in bill.kommunen:
        assert k.overhead_cents >= 0 and k.direct_cents >= 0
        assert all(line.cents >= 0 for line in k.lines)
        # Each line's cents are its exact amount give or take less than a cent, and the
        # Kommune's direct charges are their exact sum rounded half up.
        assert all(abs(line.cents - line.exact * 100) < 1 for line in k.lines)
        assert abs(k.direct_cents - k.direct_exact * 100) <= Fraction(1, 2)
        assert abs(k.overhead_cents - k.overhead_exact * 100) < 1
        if k.participation == 0:
            assert k.overhead_cents == 0
    assert bill.total_cents == bill.direct_cents + bill.overhead_cents
