"""The suite's own exporter: what the contracts say each Kommune has, as Prometheus metrics.

One custom collector (prometheus-client) turns the inputs into metric families:

    basisit_provisioned_vcpus / _memory_bytes / _disk_bytes   the instance's server (contract 1)
    basisit_provisioned_volume_bytes                           its volumes as built (contract 2)
    basisit_provisioned_units{unit}                            counts from its plan parameters
    basisit_instance_billable                                  1/0 (from the request workflow)
        labels: ags, server (host name = instance), catalog_service, plan
    basisit_kommune_info{ags,name,kreis,typ} = 1
    basisit_exporter_source_errors{source}                     1 for each broken input
    basisit_exporter_last_reload_timestamp_seconds, basisit_exporter_rebuilds_total
    basisit_exporter_scrape_duration_seconds                   this scrape's own work

An instance is served when it exists, i.e. its server is in the Kommune's stack outputs; its
plan and parameters come from the desired state. A server the desired state no longer names
(its decommission is approved, the deploy that removes it has not run) is served with
plan="unknown" and its volumes: it still exists and is still billable until decommissioned.

The exposition is rebuilt only when the fingerprint of the inputs changes (`Exposition`); a
scrape otherwise serves the cached bytes (and their gzip form) plus one line of its own
duration, so a scrape costs a stat of the inputs, not a rebuild.
"""

from __future__ import annotations

import gzip
import ipaddress
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from basisit import kommunen, paths
from basisit.contracts import stack_outputs
from basisit.contracts.desired_state import DesiredState, ServiceEntry
from basisit.contracts.stack_outputs import Server, StackOutputs
from basisit.errors import BasisItError, Conflict, ValidationFailed

MIB = 1024**2
GIB = 1024**3
INSTANCE_LABELS = ("ags", "server", "catalog_service", "plan")
UNKNOWN_PLAN = "unknown"  # a server whose desired-state entry is gone (being decommissioned)
DEFAULT_PORT = 9464  # outside the local target's ports (24000-30999) and the ephemeral range


@dataclass
class Inputs:
    """Everything one exposition is built from; gathered by the use case (basisit.app)."""

    outputs: list[StackOutputs] = field(default_factory=list)  # contract 2, the good files
    desired: dict[str, DesiredState] = field(default_factory=dict)  # contract 1 by AGS
    billable: dict[tuple[str, str], bool] = field(default_factory=dict)  # (ags, instance)
    # Every input read, by source name ("outputs/10046118.json", "database", ...), with the
    # problem of a broken one (None when it was fine).
    sources: dict[str, str | None] = field(default_factory=dict)
    # Whole-number parameters that count units (the catalog's metered estimate parameters,
    # e.g. accounts); list parameters (shares, mailboxes, ...) always count their items.
    count_parameters: frozenset[str] = frozenset()
    ledger_last_import: float | None = None  # issue 13: seconds since the epoch, when known


def source_name(path: Path) -> str:
    return f"outputs/{path.name}"


def read_outputs(folder: Path | None = None) -> tuple[list[StackOutputs], dict[str, str | None]]:
    """Contract 2 file by file: the good documents, and per file its problem or None.

    Unlike `stack_outputs.load_many`, a broken file does not fail the lot: the exporter
    reports it (basisit_exporter_source_errors) and serves every other Kommune."""
    folder = folder or paths.outputs_dir()
    documents: list[StackOutputs] = []
    sources: dict[str, str | None] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            documents.append(
                stack_outputs.check(stack_outputs.read(path), str(path), ags=path.stem)
            )
            sources[source_name(path)] = None
        except BasisItError as exc:
            sources[source_name(path)] = str(exc)
    return documents, sources


def units_of(parameters: Mapping[str, Any], counts: frozenset[str] = frozenset()) -> dict[str, int]:
    """Provisioned units from plan parameters: a list counts its items (shares, databases,
    mailboxes, peers); a whole number named in `counts` is a count (accounts). Sizes in GiB
    (`*_gib`) are not units (volumes are served in bytes), nor are settings such as
    retention_daily."""
    found: dict[str, int] = {}
    for name, value in sorted(parameters.items()):
        if isinstance(value, list):
            found[name] = len(value)
        elif (
            name in counts
            and isinstance(value, int)
            and not isinstance(value, bool)
            and not name.endswith("_gib")
        ):
            found[name] = value
    return found


def _gauge(name: str, doc: str, labels: tuple[str, ...], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels), unit=unit)


class ContractCollector(Collector):
    """The one custom collector: metric families of one set of inputs."""

    def __init__(self, inputs: Inputs, *, reloaded_at: float, rebuilds: int) -> None:
        self.inputs = inputs
        self.reloaded_at = reloaded_at
        self.rebuilds = rebuilds

    def collect(self) -> Iterator[Metric]:
        vcpus = _gauge(
            "basisit_provisioned_vcpus", "vCPUs of the instance's server", INSTANCE_LABELS
        )
        memory = _gauge(
            "basisit_provisioned_memory_bytes", "Memory of the instance's server", INSTANCE_LABELS
        )
        disk = _gauge(
            "basisit_provisioned_disk_bytes", "Root disk of the instance's server", INSTANCE_LABELS
        )
        volume = _gauge(
            "basisit_provisioned_volume_bytes",
            "Volumes of the instance as built (stack outputs), summed",
            INSTANCE_LABELS,
        )
        units = _gauge(
            "basisit_provisioned_units",
            "Units the instance's plan parameters provide (mailboxes, peers, accounts, ...)",
            (*INSTANCE_LABELS, "unit"),
        )
        billable = _gauge(
            "basisit_instance_billable",
            "1 while the instance is billable (active, not decommissioned), else 0",
            INSTANCE_LABELS,
        )
        info = _gauge(
            "basisit_kommune_info",
            "Name, Kreis and type of a Kommune",
            ("ags", "name", "kreis", "typ"),
        )
        seen: set[str] = set()
        for doc in sorted(self.inputs.outputs, key=lambda d: d["ags"]):
            ags = doc["ags"]
            seen.add(ags)
            desired = self.inputs.desired.get(ags)
            services = desired["services"] if desired is not None else []
            entries = {e["instance"]: e for e in services}
            for server in sorted(doc["servers"], key=lambda s: s["name"]):
                entry = entries.get(server["instance"])
                values = _labels(ags, server, entry)
                if entry is not None and entry["server"] is not None:
                    vcpus.add_metric(values, entry["server"]["vcpus"])
                    memory.add_metric(values, entry["server"]["ram_mib"] * MIB)
                    disk.add_metric(values, entry["server"]["disk_gib"] * GIB)
                volume.add_metric(values, sum(v["size_bytes"] for v in server["volumes"]))
                if entry is not None:
                    counted = units_of(entry["parameters"], self.inputs.count_parameters)
                    for unit, count in counted.items():
                        units.add_metric([*values, unit], count)
                flag = self.inputs.billable.get((ags, server["instance"]), False)
                billable.add_metric(values, 1 if flag else 0)
        seen.update(self.inputs.desired)
        for ags in sorted(seen):
            try:
                kommune = kommunen.get(ags)
            except BasisItError:
                continue  # not in the registry: no name to show (the outputs still count)
            # The short name, as the file_sd target label `kommune` has it (contract 2).
            info.add_metric([ags, kommune.short_name, kommune.kreis, kommune.typ], 1)
        yield from (vcpus, memory, disk, volume, units, billable, info)

        errors = _gauge(
            "basisit_exporter_source_errors",
            "1 when the input could not be read or does not match its contract",
            ("source",),
        )
        for source, problem in sorted(self.inputs.sources.items()):
            errors.add_metric([source], 0 if problem is None else 1)
        yield errors
        yield GaugeMetricFamily(
            "basisit_exporter_last_reload_timestamp_seconds",
            "When the exposition was last rebuilt from its inputs",
            value=self.reloaded_at,
        )
        yield CounterMetricFamily(
            "basisit_exporter_rebuilds",
            "Rebuilds of the exposition (one per change of its inputs)",
            value=self.rebuilds,
        )
        if self.inputs.ledger_last_import is not None:
            yield GaugeMetricFamily(
                "basisit_ledger_last_import_timestamp_seconds",
                "When the usage ledger's last import finished",
                value=self.inputs.ledger_last_import,
            )


def _labels(ags: str, server: Server, entry: ServiceEntry | None) -> list[str]:
    # catalog_service as in the file_sd target labels, so that joins line up.
    return [
        ags,
        server["instance"],
        ",".join(server["services"]),
        entry["plan"] if entry is not None else UNKNOWN_PLAN,
    ]


def render(inputs: Inputs, *, reloaded_at: float, rebuilds: int) -> bytes:
    """The text exposition of the inputs (without the scrape's own duration)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ContractCollector(inputs, reloaded_at=reloaded_at, rebuilds=rebuilds))
    return generate_latest(registry)


_DURATION = (
    b"# HELP basisit_exporter_scrape_duration_seconds Time this scrape spent checking and, "
    b"when they changed, reading the inputs\n"
    b"# TYPE basisit_exporter_scrape_duration_seconds gauge\n"
    b"basisit_exporter_scrape_duration_seconds "
)


@dataclass
class Snapshot:
    fingerprint: Hashable
    body: bytes
    gzipped: bytes
    inputs: Inputs


class Exposition:
    """Cached exposition bytes, rebuilt only when `fingerprint()` changes.

    `fingerprint` must be cheap (file stats, one database query): it runs on every scrape.
    `gather` reads the inputs; it runs only when the fingerprint differs from the last one.
    """

    def __init__(
        self,
        fingerprint: Callable[[], Hashable],
        gather: Callable[[], Inputs],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fingerprint = fingerprint
        self._gather = gather
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self.rebuilds = 0

    def current(self) -> Snapshot:
        """The snapshot for the inputs as they are now (rebuilt if they changed)."""
        with self._lock:
            mark = self._fingerprint()
            if self._snapshot is None or self._snapshot.fingerprint != mark:
                inputs = self._gather()
                self.rebuilds += 1
                body = render(inputs, reloaded_at=self._clock(), rebuilds=self.rebuilds)
                self._snapshot = Snapshot(mark, body, gzip.compress(body, 6), inputs)
            return self._snapshot

    def scrape(self, *, gzipped: bool = False) -> bytes:
        """One scrape's body: the cached exposition plus this scrape's duration."""
        started = time.perf_counter()
        snap = self.current()
        seconds = str(floatToGoString(time.perf_counter() - started))
        tail = _DURATION + seconds.encode() + b"\n"
        if gzipped:
            # A gzip file may hold several members; every client reads them as one stream.
            return snap.gzipped + gzip.compress(tail, 1)
        return snap.body + tail


def parse_listen(listen: str) -> tuple[str, int]:
    """`127.0.0.1:PORT` (or just PORT); only loopback addresses: the exporter's figures are
    the suite's internals and the house rule binds every server to 127.0.0.1."""
    host, _, port_text = listen.rpartition(":")
    host = host or "127.0.0.1"
    try:
        port = int(port_text)
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValidationFailed(f"--listen {listen!r}: expected 127.0.0.1:PORT") from None
    if not address.is_loopback or address.version != 4:
        raise ValidationFailed(f"--listen {listen!r}: only 127.0.0.0/8 addresses may be used")
    if not 0 <= port <= 65535:  # 0: any free port (tests)
        raise ValidationFailed(f"--listen {listen!r}: port {port} is outside 0..65535")
    return host, port


def _handler(exposition: Exposition) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                self.send_error(404, "only /metrics")
                return
            if self.path.startswith("/metrics"):
                zipped = "gzip" in (self.headers.get("Accept-Encoding") or "")
                body = exposition.scrape(gzipped=zipped)
                content_type = CONTENT_TYPE_LATEST
            else:
                zipped = False
                body = b'<html><body><a href="/metrics">basisit exporter</a></body></html>\n'
                content_type = "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            if zipped:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape would fill the log; errors still raise

    return Handler


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True


def server(exposition: Exposition, listen: str) -> ExporterServer:
    """A bound HTTP server for the exposition (call serve_forever; shutdown stops it)."""
    host, port = parse_listen(listen)
    try:
        return ExporterServer((host, port), _handler(exposition))
    except OSError as exc:
        raise Conflict(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
