"""Reports of a billed month (basisit.billing.model.MonthBill) as files finance works with.

One module per format, each `render(report: Report, path: Path) -> None` writing the whole
file (callers write to a temporary path and rename: no partial file is left); `german`
holds the number and date formats they share.
"""
