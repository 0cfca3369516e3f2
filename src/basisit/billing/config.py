"""catalog/billing.yaml: the shared overhead, the allocation key and the VAT treatment,
versioned by month, the seller on every invoice, and the start-up funding programmes."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from basisit import paths
from basisit.catalog.load import plain
from basisit.errors import ValidationFailed

FILE = "billing.yaml"
SCHEMA_FILE = "billing.schema.json"
METHODS = ("default", "equal", "usage")


@dataclass(frozen=True)
class Overhead:
    valid_from: dt.date
    yearly_cent: int


@dataclass(frozen=True)
class Key:
    valid_from: dt.date
    method: str
    sockel_share: Fraction = Fraction(1, 5)
    kreis_inhabitants_fraction: Fraction = Fraction(1, 2)


@dataclass(frozen=True)
class Vat:
    valid_from: dt.date
    category: str  # S: standard rate, E: exempt
    rate_percent: Decimal  # 0 when exempt
    exemption_reason: str | None = None


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    email: str


@dataclass(frozen=True)
class Seller:
    name: str
    street: str
    postcode: str
    town: str
    country: str
    contact: Contact
    email: str
    iban: str  # without blanks
    payment_days: int
    vat_id: str | None = None
    tax_number: str | None = None
    bic: str | None = None
    bank: str | None = None


@dataclass(frozen=True)
class Programme:
    """A start-up funding programme (Anschubfinanzierung): it pays `rate_of(year)` of the
    eligible lines of its months, at most `cap_cent` per Kommune over the period and at most
    `budget_cent` in all (the rules: docs/billing.md, "Start-up funding")."""

    id: str
    name: str
    budget_cent: int
    first_month: str  # YYYY-MM, inclusive
    last_month: str
    services: frozenset[str]
    overhead: bool
    rates: tuple[tuple[int, Fraction], ...]  # (calendar year, rate 0..1), every year of the period
    cap_cent: int | None = None

    def covers(self, month: str) -> bool:
        return self.first_month <= month <= self.last_month

    def rate_of(self, year: int) -> Fraction:
        return dict(self.rates)[year]


@dataclass(frozen=True)
class BillingConfig:
    overhead: tuple[Overhead, ...]
    key: tuple[Key, ...]
    seller: Seller | None = None  # None only in settings made for allocation tests
    vat: tuple[Vat, ...] = ()
    funding: tuple[Programme, ...] = ()

    def vat_on(self, day: dt.date) -> Vat | None:
        valid = [v for v in self.vat if v.valid_from <= day]
        return max(valid, key=lambda v: v.valid_from) if valid else None

    def overhead_on(self, day: dt.date) -> Overhead | None:
        valid = [o for o in self.overhead if o.valid_from <= day]
        return max(valid, key=lambda o: o.valid_from) if valid else None

    def key_on(self, day: dt.date) -> Key | None:
        valid = [k for k in self.key if k.valid_from <= day]
        return max(valid, key=lambda k: k.valid_from) if valid else None


def _exact(value: Any) -> Decimal:
    # YAML gives floats; their shortest text is what the file says (0.2, not 0.2000000000001).
    return Decimal(str(value))


def parse(document: Any, source: str, directory: Path | None = None) -> BillingConfig:
    """The settings of a parsed billing.yaml (its schema beside it in `directory`, default
    the catalog's); ValidationFailed naming every problem."""
    schema_file = (directory or paths.catalog_dir()) / SCHEMA_FILE
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    problems = [
        f"{source}: {'.'.join(str(p) for p in err.absolute_path) or '(top level)'}: {err.message}"
        for err in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        raise ValidationFailed("; ".join(problems))
    for section in ("overhead", "key", "vat"):
        days = [item["valid_from"] for item in document[section]]
        if len(set(days)) != len(days):
            raise ValidationFailed(f"{source}: {section}: two versions valid from the same month")
    overhead = tuple(
        Overhead(dt.date.fromisoformat(o["valid_from"]), _cents(o["yearly_eur"]))
        for o in document["overhead"]
    )
    keys = []
    for k in document["key"]:
        keys.append(
            Key(
                dt.date.fromisoformat(k["valid_from"]),
                k["method"],
                Fraction(_exact(k.get("sockel_share", "0.2"))),
                Fraction(_exact(k.get("kreis_inhabitants_fraction", "0.5"))),
            )
        )
    seller = _seller(document["seller"], source)
    vat = tuple(
        Vat(dt.date.fromisoformat(v["valid_from"]), v["category"],
            _exact(v.get("rate_percent", 0)), v.get("exemption_reason"))
        for v in document["vat"]
    )  # fmt: skip
    funding = tuple(_programme(f, source) for f in document.get("funding", []))
    ids = [f.id for f in funding]
    if len(set(ids)) != len(ids):
        raise ValidationFailed(f"{source}: funding: two programmes with the same id")
    return BillingConfig(overhead, tuple(keys), seller, vat, funding)


def _programme(f: dict[str, Any], source: str) -> Programme:
    where = f"{source}: funding {f['id']}"
    if f["until"] < f["from"]:
        raise ValidationFailed(f"{where}: until {f['until']} is before from {f['from']}")
    rates = {r["year"]: Fraction(_exact(r["percent"])) / 100 for r in f["rates"]}
    if len(rates) != len(f["rates"]):
        raise ValidationFailed(f"{where}: rates: two rates for the same year")
    years = range(int(f["from"][:4]), int(f["until"][:4]) + 1)
    missing = [str(y) for y in years if y not in rates]
    if missing:
        raise ValidationFailed(f"{where}: rates: no rate for {', '.join(missing)} (a year of the "
                               "period): give one, 0 if it pays nothing that year")  # fmt: skip
    outside = sorted(str(y) for y in rates if y not in years)
    if outside:
        raise ValidationFailed(f"{where}: rates: {', '.join(outside)} is outside the period")
    cap = f.get("cap_per_kommune_eur")
    return Programme(
        id=f["id"], name=f["name"], budget_cent=_cents(f["budget_eur"]),
        first_month=f["from"], last_month=f["until"], services=frozenset(f["services"]),
        overhead=bool(f.get("overhead", False)), rates=tuple(sorted(rates.items())),
        cap_cent=None if cap is None else _cents(cap),
    )  # fmt: skip


def _cents(eur: Any) -> int:
    return int(_exact(eur) * 100)


def iban_problem(iban: str) -> str | None:
    """Why an IBAN is not one (ISO 13616 check digits, mod 97), or None."""
    compact = iban.replace(" ", "").upper()
    if not (15 <= len(compact) <= 34 and compact[:2].isalpha() and compact[2:].isalnum()):
        return f"IBAN {iban!r} is not of the form CCkk and 11 to 30 letters or digits"
    digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    if int(digits) % 97 != 1:
        return f"IBAN {iban!r} has wrong check digits"
    return None


def _seller(s: dict[str, Any], source: str) -> Seller:
    if (why := iban_problem(s["iban"])) is not None:
        raise ValidationFailed(f"{source}: seller.iban: {why}")
    c = s["contact"]
    return Seller(
        name=s["name"], street=s["street"], postcode=s["postcode"], town=s["town"],
        country=s["country"], contact=Contact(c["name"], c["phone"], c["email"]),
        email=s["email"], iban=s["iban"].replace(" ", ""), payment_days=s["payment_days"],
        vat_id=s.get("vat_id"), tax_number=s.get("tax_number"), bic=s.get("bic"),
        bank=s.get("bank"),
    )  # fmt: skip


def load(file: Path | None = None) -> BillingConfig:
    path = file or paths.catalog_dir() / FILE
    try:
        document = plain(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ValidationFailed(f"{path}: cannot read the billing settings: {exc}") from None
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    return parse(document, path.name, path.parent)
