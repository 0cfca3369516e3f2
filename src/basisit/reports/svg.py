"""Bar charts as inline SVG: no script and nothing fetched, so they print and archive as is.

Each chart carries <title> and <desc> (read by screen readers through role="img") and the
caller shows the same values as text beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from basisit.reports import german

WIDTH = 640
LABEL_W = 200  # room for "Saarbrücken, Landeshauptstadt"
VALUE_W = 110  # room for "12.345,67 €"
ROW_H = 26
BAR_H = 16
COLOURS = ("#2f5d8a", "#9bb7d4")  # current month, previous month: distinguishable in greyscale


@dataclass(frozen=True)
class Bar:
    label: str
    cents: tuple[int, ...]  # one value per series: (this month,) or (this month, month before)


def _text(x: float, y: float, content: str, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" font-size="12">'
        f"{escape(content)}</text>"
    )


def _row(bar: Bar, index: int, scale: float) -> list[str]:
    top = 24 + index * ROW_H * len(bar.cents)
    parts = [_text(LABEL_W - 6, top + BAR_H - 3, bar.label, "end")]
    for series, cents in enumerate(bar.cents):
        y = top + series * ROW_H
        width = max(cents, 0) * scale
        parts.append(
            f'<rect x="{LABEL_W}" y="{y}" width="{width:.1f}" height="{BAR_H}" '
            f'fill="{COLOURS[series % len(COLOURS)]}"/>'
        )
        parts.append(_text(LABEL_W + width + 4, y + BAR_H - 3, german.euro_cents(cents)))
    return parts


def bar_chart(title: str, desc: str, bars: Sequence[Bar], legend: Sequence[str] = ()) -> Markup:
    """Horizontal bars, one group per label, scaled to the largest value."""
    largest = max((c for bar in bars for c in bar.cents), default=0)
    scale = (WIDTH - LABEL_W - VALUE_W) / largest if largest > 0 else 0.0
    series = max((len(bar.cents) for bar in bars), default=1)
    height = 24 + len(bars) * ROW_H * series + (ROW_H if legend else 0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, sans-serif">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(desc)}</desc>",
        _text(0, 14, title),
    ]
    for index, bar in enumerate(bars):
        parts.extend(_row(bar, index, scale))
    for i, name in enumerate(legend):
        x, y = LABEL_W + i * 160, height - 10
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{COLOURS[i]}"/>')
        parts.append(_text(x + 16, y, name))
    parts.append("</svg>")
    return Markup("".join(parts))
