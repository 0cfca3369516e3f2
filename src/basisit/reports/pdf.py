"""The HTML report (html.py) as an A4 PDF, rendered by WeasyPrint.

The page's own print CSS sets A4, the margins and "Seite n von m"; nothing is fetched: the
page has no URL in it, and the fetcher refuses any it might find.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import weasyprint

from basisit.reports import html
from basisit.reports.german import Report
from basisit.reports.output import replacing


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    # A report must look the same on every machine and never leak that it was opened.
    raise ValueError(f"reports fetch nothing: {url}")


def render(report: Report, path: Path) -> None:
    document = weasyprint.HTML(string=html.page(report), url_fetcher=_no_fetch)
    with replacing(path) as tmp:
        document.write_pdf(tmp)
