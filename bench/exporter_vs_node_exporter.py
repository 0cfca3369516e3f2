"""Benchmark: a scrape of `basisit exporter` serving 58 Kommunen with every service, against a
scrape of Debian's prometheus-node-exporter on the same machine, side by side in one run.

A fresh data directory gets a real request database: every Kommune of the registry onboarded
with one instance of every requestable service, all active; and a contract 2 file per Kommune
with a server per instance. Then both exporters run as their own processes on 127.0.0.1 and
are scraped in turn the way Prometheus scrapes (gzip, a new connection each time), after one
warm-up scrape each (the exporter builds its exposition there; that rebuild is reported
separately). Goal: the exporter's scrape takes at most node_exporter's.

    python bench/exporter_vs_node_exporter.py [--scrapes N] [--limit K]

Not a test: run it by hand and put the figures in the note.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
DATA = Path(tempfile.mkdtemp(prefix="basisit-bench-exporter-"))
os.environ["BASISIT_DATA_DIR"] = str(DATA)
os.environ.pop("BASISIT_DB_URL", None)

from basisit import kommunen  # noqa: E402
from basisit.catalog import load_catalog  # noqa: E402
from basisit.contracts import stack_outputs  # noqa: E402
from basisit.leitweg import make as make_leitweg  # noqa: E402
from basisit.requests import desired_state, lifecycle, onboarding  # noqa: E402
from basisit.requests import service as svc  # noqa: E402
from basisit.store.db import session_scope  # noqa: E402

# What Prometheus 2.42 sends.
HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0",
}
SCHUTZBEDARF: dict[str, str] = {}  # all "hoch": the backup must match what it saves


def populate(limit: int | None) -> list[str]:
    """Every Kommune (or the first `limit`) with every requestable service, all active."""
    catalog = load_catalog()
    services = sorted(s.id for s in catalog.services.values() if s.requestable)
    chosen = kommunen.all_kommunen()[:limit]
    for k in chosen:
        with session_scope() as s:
            onboarding.onboard(
                s, ags=k.ags, contact_name="IT", contact_email="it@example.org",
                cost_centre="KST-1", billing_address="Rathausplatz 1, 66111 Saarbrücken",
                leitweg_id=make_leitweg(k.ags), actor="bench",
            )  # fmt: skip
        with session_scope() as s:
            ids = [
                svc.create(
                    s, catalog, ags=k.ags, service_id=service,
                    plan=catalog.services[service].plans[0].id, instance=service,
                    schutzbedarf=SCHUTZBEDARF.get(service, "hoch"), actor="bench",
                ).id
                for service in services
            ]  # fmt: skip
        with session_scope() as s:
            svc.submit(s, catalog, ids, "bench", dt.date(2026, 11, 25))
            for rid in ids:
                req = svc.get(s, rid)
                for role in svc.approvals_needed(req):
                    svc.approve(s, req, role, f"{role}-bench")
        moved = lifecycle.start_provisioning(k.ags, "bench")
        lifecycle.finish_provisioning(k.ags, moved, "bench", None)
        lifecycle.finish_configuring(k.ags, dict.fromkeys(moved), "bench")
        write_outputs(k, catalog)
    return [k.ags for k in chosen]


def write_outputs(k: kommunen.Kommune, catalog: Any) -> None:
    """Contract 2 as a deploy of the Kommune's desired state would write it."""
    desired = desired_state.build(k.ags, catalog)
    servers = []
    for host, entry in enumerate(desired["services"], start=10):
        port = 20000 + len(servers)
        servers.append({
            "name": entry["instance"], "instance": entry["instance"],
            "services": [entry["service"]], "roles": entry["roles"],
            "address": f"10.24.0.{host}",
            "ssh": {"host": "127.0.0.1", "port": port, "user": "root"},
            "metrics": {"address": "127.0.0.1", "port": port + 1000, "path": "/metrics"},
            "volumes": [
                {"name": v["name"], "mount": v["mount"], "size_bytes": int(v["size_gib"] * 1024**3)}
                for v in entry["volumes"]
            ],
        })  # fmt: skip
    doc = stack_outputs.document({
        "schema_version": 1, "ags": k.ags, "target": "local", "stack": k.ags,
        "kommune": {"name": k.short_name, "slug": k.slug},
        "network": {"name": f"basisit-{k.ags}", "cidr": "10.24.0.0/24", "gateway": "10.24.0.1"},
        "dns": {"zone": desired["dns_zone"], "records": []},
        "servers": servers, "object_storage": None,
    })  # fmt: skip
    stack_outputs.write(k.ags, doc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(url: str) -> tuple[float, bytes]:
    request = urllib.request.Request(url, headers=HEADERS)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        zipped = response.headers.get("Content-Encoding") == "gzip"
    elapsed = time.perf_counter() - started
    return elapsed, gzip.decompress(body) if zipped else body


def samples(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited at start")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not answer within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=60, help="scrapes of each (default 60)")
    parser.add_argument("--limit", type=int, default=None, help="only the first K Kommunen")
    args = parser.parse_args()
    node_exporter = shutil.which("prometheus-node-exporter")
    if node_exporter is None:
        raise SystemExit("prometheus-node-exporter is not installed (scripts/bootstrap.sh)")

    started = time.perf_counter()
    fleet = populate(args.limit)
    print(f"data dir {DATA}: {len(fleet)} Kommunen with every service "
          f"({time.perf_counter() - started:.1f} s to set up)")  # fmt: skip

    ports = {"exporter": free_port(), "node_exporter": free_port()}
    urls = {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items()}
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    processes = {
        "exporter": subprocess.Popen(
            [sys.executable, "-m", "basisit.cli.main", "exporter",
             f"--listen=127.0.0.1:{ports['exporter']}", f"--data-dir={DATA}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        "node_exporter": subprocess.Popen(
            [node_exporter, f"--web.listen-address=127.0.0.1:{ports['node_exporter']}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    }  # fmt: skip
    try:
        for name, process in processes.items():
            wait_for(urls[name].replace("/metrics", "/"), process, name)
        rebuild, _ = scrape(urls["exporter"])  # the first scrape builds the exposition
        scrape(urls["node_exporter"])
        times: dict[str, list[float]] = {name: [] for name in urls}
        counts: dict[str, int] = {}
        for _ in range(args.scrapes):
            for name, url in urls.items():  # in turn: both see the same machine load
                elapsed, body = scrape(url)
                times[name].append(elapsed)
                counts[name] = samples(body)
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=10)

    result: dict[str, Any] = {"kommunen": len(fleet), "scrapes": args.scrapes}
    for name in urls:
        median = statistics.median(times[name]) * 1000
        p90 = statistics.quantiles(times[name], n=10)[-1] * 1000
        result[name] = {"samples": counts[name], "median_ms": round(median, 2),
                        "p90_ms": round(p90, 2)}  # fmt: skip
        print(f"{name:14s} {counts[name]:6d} samples  median {median:7.2f} ms  p90 {p90:7.2f} ms")
    ratio = result["exporter"]["median_ms"] / result["node_exporter"]["median_ms"]
    result["ratio_exporter_to_node_exporter"] = round(ratio, 3)
    result["exporter_first_scrape_with_rebuild_ms"] = round(rebuild * 1000, 1)
    print(f"ratio exporter / node_exporter (median): {ratio:.2f} (goal: <= 1)")
    print(f"exporter's first scrape, which builds the exposition: {rebuild * 1000:.1f} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
