"""`basisit report`: a month of the ledger billed (basisit.billing), for finance.

Reads the month's usage document (contract 3, from the ledger), the catalog with its prices,
the billing settings and the Kommunen registry; never Prometheus, podman or Pulumi. The
running month is billed provisionally ("vorläufig"); a later month is refused.
"""

from __future__ import annotations

import datetime as dt

from basisit import kommunen
from basisit.app.usage import month_usage
from basisit.billing import config as billing_config
from basisit.billing.allocate import allocate
from basisit.billing.model import MonthBill
from basisit.catalog import load_catalog
from basisit.errors import NotFound, ValidationFailed
from basisit.metering import hours as h
from basisit.store.db import session_scope
from basisit.store.models import Onboarding


def month_bill(month: str, ags: str | None = None, *, now: dt.datetime | None = None) -> MonthBill:
    """The month billed for every Kommune in the ledger, or only `ags` (the overhead is
    always split over all participants: one Kommune's report shows its own share)."""
    start, end = h.month_range(month)  # ValidationFailed for 2026-13, 26-11, ...
    moment = h.utc(now) if now is not None else dt.datetime.now(dt.UTC)
    if start > moment:
        raise ValidationFailed(
            f"month {month} has not begun: only past months and the running one (vorläufig) "
            "can be billed"
        )
    wanted = kommunen.get(ags).ags if ags else None  # NotFound for an unknown AGS
    doc = month_usage(month)
    bill = allocate(doc, load_catalog(), billing_config.load(), kommunen.get,
                    running=end > moment)  # fmt: skip
    if wanted is None:
        return bill
    own = [k for k in bill.kommunen if k.ags == wanted]
    if not own or not own[0].total_cents:
        raise NotFound(f"AGS {wanted} has no costs in {month}: nothing to report")
    return bill


def leitweg_ids() -> dict[str, str]:
    """The Leitweg-ID (e-invoice routing ID) of every onboarded Kommune, by AGS."""
    with session_scope() as session:
        return {o.ags: o.leitweg_id for o in session.query(Onboarding).all()}
