"""Benchmark: what XRechnung validation costs (basisit.invoicing.validate, rules from
scripts/xrechnung-rules.sh).

Times, in a fresh process: importing the package, compiling the XSD and the two schematron
stylesheets (once per process), the first validation, then N validations of the test fixture
at 19 % VAT, per stage (median and slowest).

    python bench/xrechnung_validation.py [-n N]

Prints the figures; target: a warm validation well under 50 ms, so an invoice run for the 58
Kommunen is dominated by rendering, not by checking. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
FIXTURE = ROOT / "tests" / "fixtures" / "xrechnung" / "invoice-vat-19.xml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="warm validations (default 200)")
    args = parser.parse_args()

    start = time.perf_counter()
    from basisit.invoicing.validate import STAGES, compile_rules, validate

    print(f"import basisit.invoicing      {1000 * (time.perf_counter() - start):8.1f} ms")
    start = time.perf_counter()
    compiled = compile_rules()
    total = time.perf_counter() - start
    parts = ", ".join(f"{stage} {1000 * s:.0f}" for stage, s in compiled.items())
    print(f"compile (once per process)    {1000 * total:8.1f} ms  ({parts} ms)")

    xml = FIXTURE.read_bytes()
    start = time.perf_counter()
    first = validate(xml)
    print(f"first validation              {1000 * (time.perf_counter() - start):8.1f} ms")
    assert first.ok, first.problems()

    per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    whole: list[float] = []
    for _ in range(args.n):
        start = time.perf_counter()
        result = validate(xml)
        whole.append(time.perf_counter() - start)
        for stage in result.stages:
            per_stage[stage.stage].append(stage.seconds)
    for name, values in [*per_stage.items(), ("whole validation", whole)]:
        print(
            f"{name:<29} {1000 * statistics.median(values):8.2f} ms median, "
            f"{1000 * max(values):.2f} ms slowest of {args.n}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
