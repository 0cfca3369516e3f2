"""A real Prometheus on exact data: OpenMetrics text -> `promtool tsdb create-blocks-from
openmetrics` -> `prometheus` on 127.0.0.1 and a free port, serving those blocks.

Used by the ledger tests (module-scoped fixture) and bench/ledger_import.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cache_dir() -> Path:
    """Outside the checkout: $BASISIT_CACHE (scripts/env.sh), else ~/.cache/basisit."""
    base = os.environ.get("BASISIT_CACHE") or str(Path.home() / ".cache" / "basisit")
    return Path(base)


def write_openmetrics(path: Path, families: dict[str, Iterable[str]]) -> Path:
    """families: metric name -> sample lines (`name{labels} value timestamp_seconds`)."""
    with path.open("w", encoding="utf-8") as fh:
        for name, lines in families.items():
            fh.write(f"# HELP {name} test data\n# TYPE {name} gauge\n")
            for line in lines:
                fh.write(line)
                fh.write("\n")
        fh.write("# EOF\n")
    return path


def _promtool(openmetrics: Path, tsdb: Path) -> None:
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(openmetrics),
         str(tsdb)],
        check=True, capture_output=True, timeout=1800,
    )  # fmt: skip


def create_blocks(families: dict[str, list[str]], tsdb: Path, *, jobs: int = 2) -> Path:
    """Blocks of the samples, made by promtool one UTC day at a time: promtool 2.42 reads its
    whole input once per 2-hour block, so one file of a month would be read 372 times."""
    if shutil.which("promtool") is None:
        raise RuntimeError("promtool is missing: apt-get install prometheus")
    tsdb.mkdir(parents=True, exist_ok=True)
    days: dict[int, dict[str, list[str]]] = {}
    for name, lines in families.items():
        for line in lines:
            day = int(line.rsplit(" ", 1)[1].split(".")[0]) // 86400
            days.setdefault(day, {}).setdefault(name, []).append(line)
    work = tsdb.parent / f"{tsdb.name}.openmetrics"
    work.mkdir(exist_ok=True)
    files = [write_openmetrics(work / f"{day}.om", fams) for day, fams in sorted(days.items())]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(lambda f: _promtool(f, tsdb), files))
    shutil.rmtree(work)
    return tsdb


def blocks(tsdb: Path) -> int:
    return sum(1 for p in tsdb.iterdir() if p.is_dir() and len(p.name) == 26)


def compact(tsdb: Path, *, timeout: float = 900) -> int:
    """Let Prometheus compact promtool's 2-hour blocks into larger ones, as a running
    Prometheus does with its own (it starts a minute after the start): queries over a month
    of 2-hour blocks are ten times slower than over compacted ones. Returns the block count."""
    with running(tsdb):
        deadline = time.monotonic() + timeout
        last, stable_since = blocks(tsdb), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(5)
            now = blocks(tsdb)
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since > (20 if now < 20 else 90):
                break
    (tsdb / "queries.active").unlink(missing_ok=True)
    return last


def cached_blocks(key_text: str, make: Callable[[], dict[str, list[str]]], into: Path) -> Path:
    """A copy (in `into`) of the blocks made from `make()`, built once per content hash under
    the cache dir; Prometheus writes into its data dir, so it never runs on the cache."""
    digest = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    cached = cache_dir() / "test-ledger" / digest / "tsdb"
    if not (cached.parent / "complete").exists():
        shutil.rmtree(cached.parent, ignore_errors=True)
        cached.parent.mkdir(parents=True)
        create_blocks(make(), cached)
        (cached.parent / "complete").write_text("ok\n", encoding="utf-8")
    target = into / "tsdb"
    shutil.copytree(cached, target)
    return target


@contextmanager
def running(tsdb: Path, *, port: int | None = None) -> Iterator[str]:
    """Prometheus serving `tsdb` (no scrape jobs) on 127.0.0.1; yields its base URL."""
    port = port or free_port()
    config = tsdb.parent / f"{tsdb.name}.prometheus.yml"
    config.write_text("global: {scrape_interval: 60s}\n", encoding="utf-8")
    log = (tsdb.parent / f"{tsdb.name}.prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
            "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "GOMAXPROCS": "2"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start; see {log.name}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
