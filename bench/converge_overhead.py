"""Benchmark: the suite's overhead on a no-change re-converge, and what the connection
settings are worth. Prints figures; not a test.

One Kommune (default Nonnweiler, 10046115, which the demo does not use) requests every catalog
service that has a role; it is approved and converged once (untimed). Then, each `--repeat`
times (best and median reported), all with nothing left to change:

  suite converge        `basisit converge --ags` (deploy with refresh + configure)
  suite configure       `basisit configure --ags`, per connection mode (fast, mitogen, default)
  bare ansible-playbook the same site.yml with the same inventory and environment, started
                        directly (no ansible-runner, no secrets store, no requests), per mode

The suite's overhead is `suite configure (fast)` minus `bare ansible-playbook (fast)`; the
connection settings' worth is `default` against `fast` and `mitogen`.

Everything runs in a private data dir under the name prefix bi-bench-cfg and is destroyed at the
end (unless --keep). Needs podman, the Pulumi CLI and all roles (source scripts/env.sh first):

    python bench/converge_overhead.py [--repeat 3] [--ags 10046115] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PREFIX = "bi-bench-cfg"
PORTS = "31900-32099"

# instance, service, plan, parameters (catalog defaults fill the rest)
SERVICES = [
    ("dns", "dns", "zone", {}),
    ("datenbank", "database", "S", {"databases": ["fachverfahren"], "storage_gib": 1}),
    ("dateiablage", "fileshare", "S", {"quota_gib": 1}),
    ("verzeichnis", "directory", None, {}),
    ("web", "webhosting", None, {}),
    ("post", "mail", None, {}),
    ("vpn", "vpn", None, {}),
    ("sicherung", "backup", "S", {"capacity_gib": 1}),
]


def cli(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "basisit.cli.main", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=3600,
        check=False,
    )
    return time.monotonic() - t0, run


def request_everything(ags: str) -> None:
    from basisit.catalog import load_catalog
    from basisit.leitweg import make as make_leitweg
    from basisit.requests import onboarding
    from basisit.requests import service as svc
    from basisit.store.db import session_scope

    catalog = load_catalog()
    with session_scope() as s:
        onboarding.onboard(
            s,
            ags=ags,
            contact_name="Benchmark",
            contact_email="bench@example.invalid",
            cost_centre="BENCH",
            billing_address="Rathaus, 66620 Nonnweiler",
            leitweg_id=make_leitweg(ags),
            actor="bench",
        )
        ids = []
        for instance, service_id, plan, params in SERVICES:
            service = catalog.services[service_id]
            # The highest common level keeps the Schutzbedarf rules (dependencies at least as
            # high, a backup for hoch) satisfied for every combination.
            level = "hoch" if "hoch" in service.schutzbedarf else service.schutzbedarf[0]
            ids.append(
                svc.create(
                    s,
                    catalog,
                    ags=ags,
                    service_id=service_id,
                    plan=plan or service.plans[0].id,
                    parameters=params,
                    instance=instance,
                    schutzbedarf=level,
                    actor="bench",
                ).id
            )
    with session_scope() as s:
        svc.submit(s, catalog, ids, "bench", dt.date.today())
    with session_scope() as s:
        for rid in ids:
            req = svc.get(s, rid)
            for role in svc.approvals_needed(req):
                svc.approve(s, req, role, f"bench-{role}")


def bare_playbook(ags: str, mode: str) -> tuple[float, int, str]:
    """ansible-playbook site.yml with the suite's inventory and environment, nothing else."""
    from basisit.configure import inventory as inv
    from basisit.configure.apply import KNOWN_HOSTS, provisioned_ssh_key
    from basisit.configure.connection import Mode, ansible_env, playbooks_dir
    from basisit.configure.runner import DEFAULT_FORKS
    from basisit.vault.store import SecretStore

    outputs = inv.load_outputs(ags)
    desired = inv.load_desired(ags)
    with SecretStore().unlocked(ags) as run:
        key = run.root / "ssh" / "id_ed25519"
        pinned = run.root / "ssh" / "known_hosts.pinned"
        key.parent.mkdir(mode=0o700)
        key.write_bytes(provisioned_ssh_key(ags))
        key.chmod(0o600)
        pinned.write_text(inv.known_hosts_text(outputs))
        run.path(KNOWN_HOSTS).parent.mkdir(mode=0o700, exist_ok=True)
        inventory = inv.build_inventory(
            outputs,
            desired,
            secrets_dir=str(run.secrets_dir),
            ssh_key_file=str(key),
            known_hosts_file=str(run.path(KNOWN_HOSTS)),
            pinned_known_hosts_file=str(pinned),
        )
        inv_file = run.root / "inventory.json"
        inv_file.write_text(json.dumps(inventory))
        (run.root / "ansible-tmp").mkdir(mode=0o700)
        env = {**os.environ, **ansible_env(Mode(mode), run.root)}
        t0 = time.monotonic()
        # The same parallelism as the driver.
        forks = str(max(1, min(len(inventory["all"]["hosts"]), DEFAULT_FORKS)))
        proc = subprocess.run(
            [
                "ansible-playbook",
                "-i",
                str(inv_file),
                "--forks",
                forks,
                str(playbooks_dir() / "site.yml"),
            ],
            env=env,
            cwd=playbooks_dir(),
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        took = time.monotonic() - t0
        recap = proc.stdout[proc.stdout.rfind("PLAY RECAP") :]
        changed = sum(
            int(part.split("=")[1])
            for line in recap.splitlines()
            for part in line.split()
            if part.startswith("changed=")
        )
        for sock in (run.root / "cp").glob("*") if (run.root / "cp").is_dir() else []:
            subprocess.run(
                ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                capture_output=True,
                check=False,
            )
    return took, proc.returncode, f"changed={changed}"


def measure(label: str, repeat: int, fn) -> dict[str, object]:
    times, notes = [], []
    for i in range(repeat):
        took, ok, note = fn()
        if not ok:
            raise SystemExit(f"{label}: run {i + 1} failed: {note}")
        times.append(took)
        notes.append(note)
        print(f"  {label:<34} run {i + 1}: {took:6.1f} s  {note}", flush=True)
    return {"label": label, "best": min(times), "median": statistics.median(times), "notes": notes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ags", default="10046115")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="do not destroy the Kommune")
    parser.add_argument("--data-dir", type=Path, help="reuse a data dir (with --keep)")
    parser.add_argument(
        "--modes", default="fast,default,mitogen", help="connection modes to compare"
    )
    args = parser.parse_args()

    data = args.data_dir or Path(tempfile.mkdtemp(prefix="bi-bench-cfg-"))
    os.environ.update(
        {
            "BASISIT_DATA_DIR": str(data),
            "BASISIT_RESOURCE_PREFIX": PREFIX,
            "BASISIT_LOCAL_PORTS": PORTS,
            "BASISIT_ACTOR": "bench",
            # The image that already holds the roles' packages, as CI and the demo use.
            "BASISIT_LOCAL_IMAGE": os.environ.get(
                "BASISIT_ROLES_IMAGE", "localhost/basisit-roles:bookworm"
            ),
        }
    )
    from basisit.configure.connection import mitogen_strategy_dir
    from basisit.provision import operations

    ags = args.ags
    print(f"data dir {data}; AGS {ags}")
    try:
        if not (data / "outputs" / f"{ags}.json").exists():
            request_everything(ags)
            took, run = cli("converge", "--ags", ags)
            print(f"first converge (untimed warm-up): {took:.0f} s, exit {run.returncode}")
            if run.returncode != 0:
                print(run.stderr[-5000:])
                return 1

        def suite(*extra: str):
            def go():
                took, run = cli(*extra, "--ags", ags, "--format", "json")
                if run.returncode != 0:
                    return took, False, run.stderr[-2000:]
                res = json.loads(run.stdout)
                cfg = res.get("configure", res)
                return took, True, f"changed={cfg.get('changed')}"

            return go

        def bare(mode: str):
            def go():
                took, rc, note = bare_playbook(ags, mode)
                return took, rc == 0, note

            return go

        modes = [m for m in args.modes.split(",") if m != "mitogen" or mitogen_strategy_dir()]
        rows = [measure("suite converge (fast)", args.repeat, suite("converge"))]
        for mode in modes:
            rows.append(
                measure(
                    f"suite configure ({mode})",
                    args.repeat,
                    suite("configure", "--connection", mode),
                )
            )
            rows.append(measure(f"bare ansible-playbook ({mode})", args.repeat, bare(mode)))
    finally:
        if not args.keep and ags in operations.deployed_stacks():
            operations.destroy(ags)

    by = {r["label"]: r for r in rows}
    print(
        f"\nNo-change re-converge of AGS {ags} ({len(SERVICES)} services), best of {args.repeat}:"
    )
    print(f"  {'':<34} {'best':>8} {'median':>8}")
    for r in rows:
        print(f"  {r['label']:<34} {r['best']:7.1f}s {r['median']:7.1f}s")
    for mode in modes:
        s, b = by[f"suite configure ({mode})"], by[f"bare ansible-playbook ({mode})"]
        print(
            f"  suite overhead ({mode}): {s['best'] - b['best']:+.1f} s "
            f"({s['best'] / b['best']:.2f}x of bare ansible-playbook)"
        )
    d = by.get("bare ansible-playbook (default)", {}).get("best")
    for mode in modes:
        if d and mode != "default":
            f = by[f"bare ansible-playbook ({mode})"]["best"]
            print(f"  Ansible defaults vs {mode}: {d:.1f} s vs {f:.1f} s ({d / f:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
