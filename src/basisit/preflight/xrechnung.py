"""The XRechnung rules check: the cached XSD and schematron of the pinned versions compile.

Compiling is using them (the doctor's rule): a marker can be there while a file was cut short
or another tool's version of it was put in its place.
"""

from __future__ import annotations

from basisit.invoicing.validate import RULES, RulesMissing, compile_rules, rules_dir
from basisit.preflight.model import CheckFailed


def check_xrechnung_rules() -> str:
    try:
        folder = rules_dir()
        seconds = compile_rules()
    except RulesMissing as exc:
        raise CheckFailed(str(exc), exc.fix) from None
    compiled = ", ".join(f"{stage} {seconds[stage]:.2f} s" for stage in seconds)
    return (
        f"{folder}: EN 16931 {RULES.en16931}, XRechnung {RULES.xrechnung} "
        f"(schematron {RULES.xrechnung_schematron}) compile ({compiled})"
    )
