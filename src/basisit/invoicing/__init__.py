"""Invoices to the Kommunen as XRechnung 3.0 (EN 16931, CII syntax).

`basisit.invoicing.validate` checks an invoice offline before it is written, in the stages the
KoSIT validator runs: well-formed XML, the UN/CEFACT CII D16B XSD, the CEN EN 16931 CII
schematron and the XRechnung CII schematron. The rule files come from Maven Central at pinned
versions (`bash scripts/xrechnung-rules.sh`, which bootstrap runs) and live under the cache.

The XSD alone is not enough: an invoice without a buyer reference (BR-DE-15) or with a grand
total that does not add up (BR-CO-15/16) passes it, and only the schematron stages refuse it.

Only foundations are imported (pyproject.toml's import-linter contracts), so billing, a portal
or the CLI can all validate a document without the database.
"""

from __future__ import annotations

from basisit.invoicing.validate import (
    RULES,
    Finding,
    RuleVersions,
    StageResult,
    Validation,
    require_valid,
    rules_dir,
    validate,
)

__all__ = [
    "RULES",
    "Finding",
    "RuleVersions",
    "StageResult",
    "Validation",
    "require_valid",
    "rules_dir",
    "validate",
]
