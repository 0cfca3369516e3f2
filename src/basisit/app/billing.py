"""`basisit report`: a month of the ledger billed (basisit.billing), for finance.

Reads the month's usage document (contract 3, from the ledger), the catalog with its prices,
the billing settings and the Kommunen registry; never Prometheus, podman or Pulumi. The
running month is billed provisionally ("vorläufig"); a later month is refused.
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
from basisit.billing.allocate import allocate
from basisit.billing.model import MonthBill
from basisit.catalog import load_catalog
from basisit.errors import NotFound, ValidationFailed
from basisit.reports.german import Report
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
    parent = output.parent
    if not parent.is_dir():
        raise ValidationFailed(f"cannot write {output}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValidationFailed(f"cannot write {output}: the directory {parent} is not writable")
    return output


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
