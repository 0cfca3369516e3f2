"""Benchmark: `plan` for the whole fleet of 58 Kommunen, sequential vs in parallel.

Every Kommune of the registry gets a typical desired state (DNS, file share with a fixed-size
volume, backup; Städte and Kreise also a database and web hosting), written to a folder and
planned through the suite (basisit.app.fleet, one worker process per stack) on the local
target. A preview creates no containers; the script checks that. Each mode runs in a fresh
data directory so both pay for creating the 58 stacks in the file backend.

    python bench/plan_fleet.py [--parallel N] [--limit K]

Prints both wall times and their ratio. Not a test: run it by hand, put the figures in the note.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from basisit import kommunen  # noqa: E402
from basisit.app import fleet  # noqa: E402

TEMPLATE = ROOT / "tests" / "fixtures" / "desired-state-10046118.yaml"
PREFIX = "bi-bench"


def typical_desired_state(k: kommunen.Kommune) -> dict[str, Any]:
    doc = yaml.safe_load(TEMPLATE.read_text())
    doc["ags"] = k.ags
    doc["kommune"] = {"name": k.short_name, "typ": k.typ, "kreis": k.kreis, "slug": k.slug}
    doc["dns_zone"] = f"{k.slug}.basisit.internal."
    if k.typ != "Gemeinde":
        extra = copy.deepcopy(doc["services"][0])
        extra.update(
            instance="datenbank", service="database", plan="S", request_id=4,
            roles=["postgresql"], ports=[{"port": 5432, "protocol": "tcp", "source": "kommune"}],
            volumes=[{"name": "data", "size_gib": 5, "mount": "/var/lib/postgresql",
                      "fixed_size": False}],
        )  # fmt: skip
        web = copy.deepcopy(doc["services"][0])
        web.update(
            instance="web", service="webhosting", plan="S", request_id=5, roles=["nginx"],
            ports=[{"port": 443, "protocol": "tcp", "source": "any"}], depends_on=["dns"],
        )  # fmt: skip
        doc["services"] += [extra, web]
    return doc


def containers() -> int:
    out = subprocess.run(
        ["podman", "ps", "-a", "-q", "--filter", "name=^" + PREFIX],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return len(out.stdout.split())


def run_mode(folder: Path, fleet_ags: list[str], parallel: int) -> tuple[float, list[dict]]:
    data = Path(tempfile.mkdtemp(prefix=f"bi-bench-plan-p{parallel}-"))
    os.environ["BASISIT_DATA_DIR"] = str(data)
    started = time.monotonic()
    results = fleet.run(
        "plan",
        fleet_ags,
        options={"desired_state": str(folder), "target": "local"},
        parallel=parallel,
    )
    return time.monotonic() - started, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=4, help="workers of the parallel run")
    parser.add_argument("--limit", type=int, default=0, help="only the first K Kommunen")
    args = parser.parse_args()
    os.environ["BASISIT_RESOURCE_PREFIX"] = PREFIX
    every = kommunen.all_kommunen()
    if args.limit:
        every = every[: args.limit]
    folder = Path(tempfile.mkdtemp(prefix="bi-bench-desired-"))
    for k in every:
        (folder / f"{k.ags}.yaml").write_text(yaml.safe_dump(typical_desired_state(k)))
    fleet_ags = [k.ags for k in every]
    before = containers()
    print(f"planning {len(fleet_ags)} Kommunen on the local target ({os.cpu_count()} cores)")
    seq, seq_results = run_mode(folder, fleet_ags, 1)
    print(f"sequential (--parallel 1): {seq:7.1f} s")
    par, par_results = run_mode(folder, fleet_ags, args.parallel)
    print(f"parallel (--parallel {args.parallel}):   {par:7.1f} s")
    print(f"ratio sequential / parallel: {seq / par:.2f}")
    failed = [r for r in seq_results + par_results if not r.get("ok")]
    planned = sum(r["changes"].get("create", 0) for r in par_results if r.get("ok"))
    print(f"resources to create in the fleet: {planned}; failed plans: {len(failed)}")
    for r in failed[:5]:
        print(f"  {r['ags']}: {r.get('error')}")
    after = containers()
    print(f"containers before/after: {before}/{after} (a plan creates none)")
    return 1 if failed or after != before else 0


if __name__ == "__main__":
    sys.exit(main())
