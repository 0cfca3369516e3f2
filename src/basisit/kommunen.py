"""The registry of the Saarland's 58 Kommunen (inventories/kommunen.csv)."""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from basisit import paths
from basisit.errors import NotFound

TYPES = ("Stadt", "Gemeinde", "Landkreis", "Regionalverband")
# The one AGS rule: "10" (Saarland), a three-digit Kreis, for a Gemeinde three more digits.
# The groups are the Kreis and the Gemeinde number (basisit.addressing uses them).
AGS_PATTERN = re.compile(r"^10(\d{3})(\d{3})?$")


@dataclass(frozen=True)
class Kommune:
    ags: str
    name: str
    typ: str
    kreis_schluessel: str
    kreis: str
    einwohner: int
    flaeche_ha: int

    @property
    def is_kreis(self) -> bool:
        return len(self.ags) == 5

    @property
    def short_name(self) -> str:
        """'Merzig, Kreisstadt' -> 'Merzig'; 'Sulzbach/ Saar, Stadt' -> 'Sulzbach/ Saar'."""
        return self.name.split(",")[0].strip()

    @property
    def slug(self) -> str:
        """A DNS label: lower case ASCII, umlauts spelled out, stable for the AGS."""
        text = self.short_name.lower()
        for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
            text = text.replace(src, dst)
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
        if self.is_kreis:
            text = f"kreis-{text}" if self.typ == "Landkreis" else f"rv-{text}"
        return text[:63].strip("-")


def registry_file() -> Path:
    return paths.inventories_dir() / "kommunen.csv"


@cache
def _load(file: Path) -> dict[str, Kommune]:
    rows = [
        line for line in file.read_text(encoding="utf-8").splitlines() if not line.startswith("#")
    ]
    result: dict[str, Kommune] = {}
    for row in csv.DictReader(rows):
        k = Kommune(
            ags=row["ags"],
            name=row["name"],
            typ=row["typ"],
            kreis_schluessel=row["kreis_schluessel"],
            kreis=row["kreis"],
            einwohner=int(row["einwohner"]),
            flaeche_ha=int(row["flaeche_ha"]),
        )
        if k.typ not in TYPES:
            raise ValueError(f"{file}: AGS {k.ags}: unknown typ {k.typ!r}")
        result[k.ags] = k
    return result


def all_kommunen() -> list[Kommune]:
    return list(_load(registry_file()).values())


def get(ags: str) -> Kommune:
    """The Kommune with this AGS, or NotFound naming it."""
    ags = ags.strip()
    found = _load(registry_file()).get(ags)
    if found is None:
        hint = ""
        if not AGS_PATTERN.fullmatch(ags):
            hint = " (a Saarland AGS has 8 digits for a Gemeinde or 5 for a Kreis, starting 10)"
        raise NotFound(f"unknown AGS {ags!r}: no Saarland Kommune has it{hint}")
    return found
