"""Exact amounts and the two rounding rules of billing (docs/billing.md).

Amounts are `Fraction`s of euros or cents until the very end: Decimal division would round
at its 28th digit, and a month's pro-rata (seconds ÷ 2,682,000) does not terminate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction


def round_half_up(value: Fraction) -> int:
    """Half up (away from zero for the non-negative amounts billing has): 0.5 ct -> 1 ct."""
    floor = math.floor(value)
    return floor + (1 if value - floor >= Fraction(1, 2) else 0)


def largest_remainder(total: int, shares: Sequence[Fraction]) -> list[int]:
    """Whole units for each share that add up to `total`: each share's floor, and the units
    left over one each to the largest remainders; ties go to the earlier share (callers
    order the shares by their tie-break). `total` is the shares' sum rounded: between the
    sum of the floors and that plus the number of shares."""
    floors = [math.floor(s) for s in shares]
    left = total - sum(floors)
    if not 0 <= left <= len(shares):
        raise ValueError(f"cannot spread {total} over shares adding up to {sum(shares)}")
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def euro(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def to_decimal(value: Fraction, places: int) -> Decimal:
    """An exact value shown with `places` decimals, rounded half up."""
    scaled = value * 10**places
    return Decimal(round_half_up(scaled)).scaleb(-places)
