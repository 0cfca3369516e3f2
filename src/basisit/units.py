"""Base units of the ledger and the catalog's units (pure).

The ledger stores integers in base units: billable seconds (`s`), byte-seconds (`byte_s`,
a metric ending in `_bytes`), count-seconds (`count_s`, any other gauge) and counts (`count`,
one-time fees). The catalog prices `Betriebsstunde`, `Einrichtung` and `<x>-Monat` units
(`GiB-Monat`, `Postfach-Monat`, ...). Converting is done once, in Decimal, from the sums of a
month: a `-Monat` unit divides by the seconds of that very month (744, 745, 720 or 743 hours
in Berlin), never a fixed 730.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

BETRIEBSSTUNDE = "Betriebsstunde"
EINRICHTUNG = "Einrichtung"

SECONDS = "s"
BYTE_SECONDS = "byte_s"
COUNT_SECONDS = "count_s"
COUNT = "count"

_BINARY = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
# German labels of the quality flags, as the usage table shows them.
QUALITY_DE = {"gap": "Lücke", "no_measurement": "noch keine Messung"}


def base_unit(metric: str) -> str:
    return BYTE_SECONDS if metric.endswith("_bytes") else COUNT_SECONDS


def exact_in_catalog_unit(unit: str, base: str, quantity: int, month_seconds: int) -> Fraction:
    """A month's sum in the catalog's unit, exactly: seconds in hours, bytes in the unit's
    binary prefix (GiB = 2^30), a `-Monat` unit held the whole month counts 1."""
    amount = Fraction(quantity)
    if unit == BETRIEBSSTUNDE or base == SECONDS:
        return amount / 3600
    if base == COUNT:
        return amount
    if base == BYTE_SECONDS:
        amount /= _BINARY.get(unit.split("-", 1)[0], 1)
    return amount / month_seconds


def in_catalog_unit(unit: str, base: str, quantity: int, month_seconds: int) -> Decimal:
    """The same as a Decimal (28 digits), for display."""
    exact = exact_in_catalog_unit(unit, base, quantity, month_seconds)
    return Decimal(exact.numerator) / Decimal(exact.denominator)


def quantize(amount: Decimal, places: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def places_for(unit: str) -> int:
    """Decimal places shown: whole fees, hours to the second (4), month units to 6."""
    if unit == EINRICHTUNG:
        return 0
    return 4 if unit == BETRIEBSSTUNDE else 6


def german(amount: Decimal, places: int) -> str:
    """`1234.5` -> `1.234,5000` (German thousands dot and decimal comma)."""
    text = f"{quantize(amount, places):,.{places}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")
