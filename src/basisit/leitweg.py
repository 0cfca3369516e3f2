"""Leitweg-ID: the routing ID German public bodies need on e-invoices (XRechnung BT-10).

Format (KoSIT, Leitweg-ID 2.0): Grobadressierung (2-12 digits), optional Feinadressierung (up to
30 letters or digits), and two check digits after ISO/IEC 7064 MOD 97-10, separated by '-'.
"""

from __future__ import annotations

import re

_FORMAT = re.compile(r"^(?P<grob>[0-9]{2,12})(?:-(?P<fein>[0-9A-Z]{1,30}))?-(?P<check>[0-9]{2})$")


def _mod97(text: str) -> int:
    digits = "".join(str(int(ch, 36)) for ch in text)
    return int(digits + "00") % 97


def check_digits(grob: str, fein: str = "") -> str:
    return f"{98 - _mod97(grob + fein):02d}"


def make(grob: str, fein: str = "") -> str:
    parts = [grob, fein] if fein else [grob]
    return "-".join([*parts, check_digits(grob, fein)])


def problem(leitweg_id: str) -> str | None:
    """Why the ID is not valid, or None."""
    m = _FORMAT.match(leitweg_id)
    if not m:
        return (
            f"Leitweg-ID {leitweg_id!r} is not of the form <2-12 digits>[-<up to 30 A-Z/0-9>]"
            "-<2 check digits>"
        )
    expected = check_digits(m.group("grob"), m.group("fein") or "")
    if m.group("check") != expected:
        return f"Leitweg-ID {leitweg_id!r} has check digits {m.group('check')}, expected {expected}"
    return None
