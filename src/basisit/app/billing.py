"""`basisit report`: a month of the ledger billed (basisit.billing), for finance.

Reads the month's usage document (contract 3, from the ledger), the catalog with its prices,
the billing settings and the Kommunen registry; never Prometheus, podman or Pulumi. The
running month is billed provisionally ("vorläufig"); a later month is refused. A month that
a start-up funding programme covers is billed with its subsidies, which depend on the
programme's earlier months: those are billed too (basisit.billing.funding).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from basisit import hours as h
from basisit import kommunen
from basisit.app.usage import month_usage
from basisit.billing import config as billing_config
from basisit.billing import funding
from basisit.billing.allocate import allocate
from basisit.billing.config import BillingConfig
from basisit.billing.model import MonthBill
from basisit.catalog import Catalog, load_catalog
from basisit.errors import NotFound, ValidationFailed
from basisit.reports.german import Report
from basisit.store import ledger_sums
from basisit.store.db import session_scope
from basisit.store.models import Onboarding


def month_bill(month: str, ags: str | None = None, *, now: dt.datetime | None = None) -> MonthBill:
    """The month billed for every Kommune in the ledger, or only `ags` (the overhead is
    always split over all participants: one Kommune's report shows its own share)."""
    start = h.month_range(month)[0]  # ValidationFailed for 2026-13, 26-11, ...
    moment = h.utc(now) if now is not None else dt.datetime.now(dt.UTC)
    if start > moment:
        raise ValidationFailed(
            f"month {month} has not begun: only past months and the running one (vorläufig) "
            "can be billed"
        )
    wanted = kommunen.get(ags).ags if ags else None  # NotFound for an unknown AGS
    catalog, settings = load_catalog(), billing_config.load()
    month = month.strip()
    if any(p.covers(month) for p in settings.funding):
        bill = _funded(month, catalog, settings, moment)[-1]
    else:
        bill = _allocated(month, catalog, settings, moment)
    if wanted is None:
        return bill
    own = [k for k in bill.kommunen if k.ags == wanted]
    if not own or not own[0].total_cents:
        raise NotFound(f"AGS {wanted} has no costs in {month}: nothing to report")
    return bill


def _allocated(month: str, catalog: Catalog, settings: BillingConfig,
               moment: dt.datetime) -> MonthBill:  # fmt: skip
    """The month priced and allocated, before funding; NotFound without ledger rows."""
    end = h.month_range(month)[1]
    return allocate(month_usage(month), catalog, settings, kommunen.get, running=end > moment)


def _funded(
    last: str, catalog: Catalog, settings: BillingConfig, moment: dt.datetime
) -> list[MonthBill]:
    """The ledger's months from the first programme month up to `last` (NotFound when that
    has no ledger rows), billed with their subsidies."""
    problems = funding.unknown_services(settings.funding, catalog)
    if problems:
        raise ValidationFailed("; ".join(problems))
    first = min((p.first_month for p in settings.funding), default=last)
    with session_scope() as session:
        kept = ledger_sums.months(session.connection())
    history = []
    for month in sorted(m for m in kept if first <= m < last):
        try:
            history.append(_allocated(month, catalog, settings, moment))
        except NotFound:  # a month without ledger rows paid nothing
            continue
    history.append(_allocated(last, catalog, settings, moment))
    return funding.fund(history, settings.funding)


def funded_months(*, now: dt.datetime | None = None) -> tuple[list[MonthBill], BillingConfig]:
    """Every month of the funding programmes' periods that the ledger has, up to the running
    one, billed with its subsidies; and the settings that name the programmes."""
    moment = h.utc(now) if now is not None else dt.datetime.now(dt.UTC)
    catalog, settings = load_catalog(), billing_config.load()
    if not settings.funding:
        raise NotFound("billing.yaml names no funding programme")
    running = h.month_of(moment)
    last = min(running, max(p.last_month for p in settings.funding))
    with session_scope() as session:
        kept = [m for m in ledger_sums.months(session.connection()) if m <= last]
    if not kept:
        raise NotFound("the ledger has no month to fund yet")
    return _funded(max(kept), catalog, settings, moment), settings


def funding_outlook(*, now: dt.datetime | None = None) -> list[funding.Outlook]:
    """Each funding programme so far and at its current rate (`basisit report funding`)."""
    bills, settings = funded_months(now=now)
    return [funding.outlook(bills, p) for p in settings.funding]


def write_funding_report(output: Path, *, now: dt.datetime | None = None) -> list[funding.Outlook]:
    """The funding report at `output`: a .html or .csv file, or a directory to put the HTML
    page in. The path is checked before anything is billed; nothing half-written remains."""
    from basisit.reports import funding as funding_report

    moment = h.utc(now) if now is not None else dt.datetime.now(dt.UTC)
    if output.is_dir():
        output = output / f"basisit-anschubfinanzierung-{h.month_of(moment)}.html"
    if output.suffix not in funding_report.FORMATS:
        raise ValidationFailed(
            f"cannot write {output}: the funding report is a "
            f"{' or '.join(funding_report.FORMATS)} file"
        )
    _writable_parent(output)
    outlooks = funding_outlook(now=moment)
    today = moment.astimezone(h.BERLIN).strftime("%d.%m.%Y")
    funding_report.render(outlooks, output, today)
    return outlooks


def leitweg_ids() -> dict[str, str]:
    """The Leitweg-ID (e-invoice routing ID) of every onboarded Kommune, by AGS."""
    with session_scope() as session:
        return {o.ags: o.leitweg_id for o in session.query(Onboarding).all()}


# Each format: its renderer and the suffix its file gets when -o names a directory. The
# renderers write to a temporary file beside the target and rename it: no partial file.
# `focus` writes the Parquet file and a CSV of the same rows beside it.
FORMATS: dict[str, str] = {
    "csv": ".csv", "html": ".html", "pdf": ".pdf", "xlsx": ".xlsx", "focus": ".focus.parquet",
}  # fmt: skip
MONTH_OVER_MONTH = {"html", "pdf"}  # their month-over-month chart needs the month before


@dataclass(frozen=True)
class Written:
    paths: tuple[Path, ...]
    bill: MonthBill


def renderer(fmt: str) -> Callable[[Report, Path], object]:
    # Imported when used: WeasyPrint and openpyxl take a second to load, and every other
    # command of the CLI would pay for it.
    if fmt == "csv":
        from basisit.reports import csv_report

        return csv_report.render
    if fmt == "html":
        from basisit.reports import html

        return html.render
    if fmt == "pdf":
        from basisit.reports import pdf

        return pdf.render
    if fmt == "xlsx":
        from basisit.reports import xlsx

        return xlsx.render
    if fmt == "focus":
        from basisit.reports import focus

        return focus.render
    raise ValidationFailed(f"report format {fmt!r} is not one of {', '.join(FORMATS)}")


def _target(output: Path, fmt: str, month: str, ags: str | None) -> Path:
    if output.is_dir():
        name = f"basisit-{month}-{ags or 'alle'}{FORMATS[fmt]}"
        output = output / name
    if fmt == "focus" and output.suffix != ".parquet":
        raise ValidationFailed(
            f"cannot write {output}: a FOCUS export is a .parquet file (with a .csv beside it)"
        )
    _writable_parent(output)
    return output


def _writable_parent(output: Path) -> None:
    parent = output.parent
    if not parent.is_dir():
        raise ValidationFailed(f"cannot write {output}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValidationFailed(f"cannot write {output}: the directory {parent} is not writable")


def write_report(
    month: str,
    fmt: str,
    output: Path,
    ags: str | None = None,
    *,
    now: dt.datetime | None = None,
) -> Written:
    """The month's report (the overall one, or one Kommune's) in `fmt` at `output` (a file,
    or a directory to put it in). Every bad input fails before anything is written."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"report format {fmt!r} is not one of {', '.join(FORMATS)}")
    render = renderer(fmt)
    wanted = kommunen.get(ags).ags if ags else None  # NotFound for an unknown AGS
    h.month_range(month)  # a malformed month is named before the path
    # The path is checked before the month is billed: a bad one fails at once.
    target = _target(output, fmt, month.strip(), wanted)
    bill = month_bill(month, wanted, now=now)
    # The month before is billed too only for the formats whose chart compares with it.
    previous = _previous(bill.month, now) if fmt in MONTH_OVER_MONTH else None
    report = Report(bill=bill, ags=wanted, leitweg=leitweg_ids(), previous=previous)
    got = render(report, target)
    paths = tuple(got) if isinstance(got, list | tuple) else (target,)
    return Written(paths=paths, bill=bill)


def _previous(month: str, now: dt.datetime | None) -> MonthBill | None:
    """The month before, for the month-over-month chart, when the ledger has it."""
    year, mon = (int(p) for p in month.split("-"))
    before = f"{year - (mon == 1)}-{(mon - 2) % 12 + 1:02d}"
    try:
        return month_bill(before, now=now)
    except NotFound:
        return None
