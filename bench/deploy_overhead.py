"""Benchmark: a no-change deploy of one Kommune through the suite vs the bare Automation API.

Deploys one fictitious Kommune (AGS 10046903, two servers, one fixed-size volume) on the
local target once, then times, interleaved and repeated:

- suite:  basisit.app.deploy.deploy (lock, recovery check, allocation, keys,
          `pulumi up`, contract 2 written and validated, status record), with and without the
          refresh the CLI does by default;
- direct: create_or_select_stack + stack.up on the same inline program, workspace and
          backend, with nothing of the suite around it;
- cli:    `basisit deploy` as a new process (interpreter start and imports included).

    python bench/deploy_overhead.py [--runs N]

Prints the median of each and the suite's overhead. Destroys the Kommune at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from basisit.app import deploy as deploying  # noqa: E402
from basisit.app.sources import Source  # noqa: E402
from basisit.provision import environment, operations  # noqa: E402
from basisit.vault import keys as secrets  # noqa: E402

AGS = "10046903"
TEMPLATE = ROOT / "tests" / "fixtures" / "desired-state-10046118.yaml"


def desired() -> dict:
    doc = yaml.safe_load(TEMPLATE.read_text())
    doc["ags"] = AGS
    doc["kommune"] = {"name": "Benchdorf", "typ": "Gemeinde", "kreis": "St. Wendel",
                      "slug": "benchdorf"}  # fmt: skip
    doc["dns_zone"] = "benchdorf.basisit.internal."
    doc["services"] = doc["services"][:2]  # dns + file share (1 GiB fixed volume)
    return doc


def direct_up(program, refresh: bool) -> float:
    """The same update with the Automation API alone."""
    from pulumi import automation as auto

    started = time.monotonic()
    env = environment.engine_env(secrets.passphrase_file())
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(environment.workspace_dir(AGS)),
        pulumi_home=env["PULUMI_HOME"],
        env_vars=env,
        pulumi_command=environment.pulumi_command(),
        secrets_provider="passphrase",
        project_settings=auto.ProjectSettings(
            name="basisit", runtime="python",
            backend=auto.ProjectBackend(url=environment.backend_url()),
        ),
    )  # fmt: skip
    stack = auto.create_or_select_stack(
        stack_name=AGS, project_name="basisit", program=program, opts=opts
    )
    result = stack.up(refresh=refresh, color="never", show_secrets=False, suppress_outputs=True)
    assert set(result.summary.resource_changes or {}) == {"same"}, result.summary.resource_changes
    return time.monotonic() - started


def suite_up(source: Source, refresh: bool) -> float:
    started = time.monotonic()
    result = deploying.deploy(AGS, source, target="local", actor="bench", refresh=refresh)
    assert set(result.changes) == {"same"}, result.changes
    return time.monotonic() - started


def cli_up(path: Path) -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "basisit.cli.main", "deploy", "--ags", AGS,
         "--desired-state", str(path), "--format", "json"],
        check=True, capture_output=True,
    )  # fmt: skip
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bi-bench-deploy-"))
    os.environ["BASISIT_DATA_DIR"] = str(base / "data")
    os.environ["BASISIT_RESOURCE_PREFIX"] = "bi-bench"
    os.environ["BASISIT_LOCAL_PORTS"] = "31800-31899"
    path = base / "desired.yaml"
    path.write_text(yaml.safe_dump(desired()))
    source = Source(path)
    print(f"first deploy of AGS {AGS} (not timed) ...")
    first = deploying.deploy(AGS, source, target="local", actor="bench")
    print(f"  {first.changes} in {first.duration_s:.1f} s")
    program = operations.build_program(AGS, desired(), "local", persist=True)
    modes = ("suite", "direct", "suite+refresh", "direct+refresh", "cli")
    times: dict[str, list[float]] = {k: [] for k in modes}
    try:
        for i in range(args.runs):
            times["suite"].append(suite_up(source, refresh=False))
            times["direct"].append(direct_up(program, refresh=False))
            times["suite+refresh"].append(suite_up(source, refresh=True))
            times["direct+refresh"].append(direct_up(program, refresh=True))
            times["cli"].append(cli_up(path))
            print(
                f"  run {i + 1}/{args.runs}: "
                + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items())
            )
    finally:
        operations.destroy(AGS)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nno-change deploy of one Kommune (2 servers, 5 resources), median of {args.runs}:")
    for key, value in med.items():
        print(f"  {key:15} {value:6.2f} s")
    print(f"suite overhead without refresh: {med['suite'] - med['direct']:+.2f} s "
          f"({(med['suite'] / med['direct'] - 1) * 100:+.0f} %)")  # fmt: skip
    print(f"suite overhead with refresh:    {med['suite+refresh'] - med['direct+refresh']:+.2f} s "
          f"({(med['suite+refresh'] / med['direct+refresh'] - 1) * 100:+.0f} %)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
