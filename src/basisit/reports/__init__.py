"""Reports of a billed month (basisit.billing.model.MonthBill) as files finance works with.

One module per format, each `render(report: Report, path: Path) -> None` writing the whole
file (to a temporary file beside it, renamed at the end: output.replacing, so no partial
file is left); `german` holds the number and date formats they share, `svg` the charts.
"""
