"""Postal addresses as an e-invoice needs them: street, post code, town and country.

XRechnung requires the buyer's post code and town (BT-53, BT-52) as their own fields, so
onboarding stores them apart. People type an address on one line ("Im Kloster 1, 66636
Tholey"); `parse` splits that form and names what it cannot split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from basisit.errors import ValidationFailed

# "Straße Nr, PLZ Ort": the last comma (or line break) separates street from post code and
# town; a German post code is five digits, optionally written "D-66636".
_ONE_LINE = re.compile(r"^(?P<street>.+?)\s*[,\n]\s*(?:D-)?(?P<postcode>\d{5})\s+(?P<town>\S.*)$")
_POSTCODE_DE = re.compile(r"^\d{5}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Address:
    street: str  # with the house number
    postcode: str
    town: str
    country: str = "DE"  # ISO 3166-1 alpha-2

    def one_line(self) -> str:
        return f"{self.street}, {self.postcode} {self.town}"


def problems(address: Address) -> list[str]:
    """What is wrong with an address, in words (empty when nothing is)."""
    found = []
    if len(address.street.strip()) < 3:
        found.append("the billing address has no street (e.g. 'Im Kloster 1')")
    if not _COUNTRY.match(address.country):
        found.append(f"country {address.country!r} is not an ISO 3166 code such as DE")
    if address.country == "DE" and not _POSTCODE_DE.match(address.postcode):
        found.append(f"post code {address.postcode!r} is not five digits")
    elif not address.postcode.strip():
        found.append("the billing address has no post code")
    if not address.town.strip():
        found.append("the billing address has no town")
    for name, value, limit in (("street", address.street, 200), ("town", address.town, 100)):
        if len(value) > limit:
            found.append(f"{name} is longer than {limit} characters")
    return found


def split(text: str) -> Address | None:
    """'Straße Nr, PLZ Ort' as an Address in Germany, or None when it is not of that form."""
    m = _ONE_LINE.match(" ".join(text.strip().split(" ")).strip())
    if not m:
        return None
    return Address(m.group("street").strip(), m.group("postcode"), m.group("town").strip())


def parse(text: str, what: str = "billing address") -> Address:
    """An address typed on one line; ValidationFailed naming the problem otherwise."""
    address = split(text)
    if address is None:
        raise ValidationFailed(
            f"{what} {text.strip()!r} is not 'street and number, post code town' "
            "(e.g. 'Im Kloster 1, 66636 Tholey')"
        )
    if found := problems(address):
        raise ValidationFailed(f"{what} {text.strip()!r} is incomplete", found)
    return address
