"""Use case `basisit exporter`: the exporter's inputs, gathered from the contracts and the
request database, and the cheap fingerprint that says when they changed.

The driver (basisit.monitoring.exporter) never opens the database: this module builds each
deployed Kommune's desired state (contract 1) and the instances' billable flags and hands
them over with contract 2. A Kommune whose desired state cannot be built, or a database that
cannot be read, or an outputs file that broke, is reported as a source error; the last good
documents are served meanwhile, so the series do not vanish for the length of a database
restart or a damaged file.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from basisit import kommunen, paths
from basisit.app import ledger
from basisit.catalog import load_catalog
from basisit.catalog.models import Catalog
from basisit.contracts.desired_state import DesiredState
from basisit.contracts.stack_outputs import StackOutputs
from basisit.errors import BasisItError
from basisit.monitoring import exporter
from basisit.requests import desired_state
from basisit.requests import workflow as wf
from basisit.store.db import session_scope
from basisit.store.models import AuditEvent, Request

log = logging.getLogger(__name__)
DATABASE = "database"
CATALOG = "catalog"


def billable_instances(session: Session) -> dict[tuple[str, str], bool]:
    """(ags, instance) -> billable, for every instance that was ever active.

    Billable from the moment a create or change request of the instance reached `active`
    until a decommission request reached `decommissioned` (the newer of the two events
    decides, so an instance created again under the same name is billable again). A change
    in progress or a failed change does not interrupt it; a create that never reached
    `active` is not billable."""
    rows = session.execute(
        select(Request.ags, Request.instance, AuditEvent.to_state)
        .join(Request, AuditEvent.request_id == Request.id)
        .where(AuditEvent.to_state.in_((wf.ACTIVE, wf.DECOMMISSIONED)))
        .order_by(AuditEvent.id)
    )
    flags: dict[tuple[str, str], bool] = {}
    for ags, instance, to_state in rows:
        flags[(ags, instance)] = to_state == wf.ACTIVE
    return flags


def count_parameters(catalog: Catalog) -> frozenset[str]:
    """Parameters whose value is a number of priced units: the metered prices' estimate
    parameters (accounts, mailboxes, peers, ...)."""
    return frozenset(
        metered.estimate_parameter
        for service in catalog.services.values()
        for plan in service.plans
        for price in plan.prices
        for metered in price.metered
    )


def _stat(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (path.name, -1, -1)
    return (path.name, st.st_mtime_ns, st.st_size)


def _last_import() -> float | None:
    """basisit_ledger_last_import_timestamp_seconds: when the newest ledger import committed."""
    try:
        finished = ledger.last_import_finished_at()
    except BasisItError:
        return None  # the database fault is reported by the gathering itself
    return finished.timestamp() if finished is not None else None


class Gatherer:
    """The exporter's `fingerprint` and `gather` callbacks over one data directory."""

    def __init__(self) -> None:
        self._last_desired: dict[str, DesiredState] = {}
        self._last_billable: dict[tuple[str, str], bool] = {}
        self._last_outputs: dict[str, StackOutputs] = {}

    def fingerprint(self) -> Hashable:
        """What the inputs depend on, cheaply: the outputs files' names, mtimes and sizes,
        the catalog's and the Kommunen registry's files, and the request database's newest
        audit event and request change (every transition writes an audit event)."""
        files = sorted(paths.outputs_dir().glob("*.json"))
        catalog = sorted(paths.catalog_dir().glob("*.yaml"))
        stats = tuple(_stat(p) for p in (*files, *catalog, kommunen.registry_file()))
        try:
            with session_scope() as session:
                newest = session.execute(
                    select(
                        select(func.max(AuditEvent.id)).scalar_subquery(),
                        select(func.max(Request.updated_at)).scalar_subquery(),
                    )
                ).one()
            database: Hashable = (newest[0], str(newest[1]))
        except BasisItError as exc:
            # Unchanged while the fault lasts: one rebuild that reports it, not one a scrape.
            database = ("unavailable", str(exc))
        return (stats, database, _last_import())

    def gather(self) -> exporter.Inputs:
        documents, sources = exporter.read_outputs()
        good = {doc["ags"]: doc for doc in documents}
        # A Kommune whose file broke since the last read keeps its last good document (its
        # servers still exist); one whose file is gone (destroyed) is gone.
        for source, problem in sources.items():
            ags = source.removeprefix("outputs/").removesuffix(".json")
            if problem is not None and ags in self._last_outputs:
                documents.append(self._last_outputs[ags])
        self._last_outputs = good | {
            a: d for a, d in self._last_outputs.items() if sources.get(f"outputs/{a}.json")
        }
        inputs = exporter.Inputs(outputs=documents, sources=sources)
        inputs.ledger_last_import = _last_import()
        try:
            catalog = load_catalog()
            inputs.sources[CATALOG] = None
        except BasisItError as exc:
            log.warning("exporter: the catalog cannot be read: %s", exc)
            inputs.sources[CATALOG] = str(exc)
            return self._last_good(inputs)
        inputs.count_parameters = count_parameters(catalog)
        try:
            with session_scope() as session:
                inputs.billable = billable_instances(session)
                for doc in documents:
                    self._desired(session, catalog, doc["ags"], inputs)
            inputs.sources[DATABASE] = None
        except BasisItError as exc:
            log.warning("exporter: the request database cannot be read: %s", exc)
            inputs.sources[DATABASE] = str(exc)
            return self._last_good(inputs)
        self._last_desired = dict(inputs.desired)
        self._last_billable = dict(inputs.billable)
        return inputs

    def _desired(
        self, session: Session, catalog: Catalog, ags: str, inputs: exporter.Inputs
    ) -> None:
        source = f"desired_state/{ags}"
        try:
            inputs.desired[ags] = desired_state.build_from(session, catalog, ags)
            inputs.sources[source] = None
        except BasisItError as exc:
            log.warning("exporter: desired state of AGS %s: %s", ags, exc)
            inputs.sources[source] = str(exc)
            if ags in self._last_desired:
                inputs.desired[ags] = self._last_desired[ags]

    def _last_good(self, inputs: exporter.Inputs) -> exporter.Inputs:
        """The documents of the last good read, while the catalog or database is broken."""
        inputs.desired = dict(self._last_desired)
        inputs.billable = dict(self._last_billable)
        return inputs


def exposition() -> exporter.Exposition:
    gatherer = Gatherer()
    return exporter.Exposition(gatherer.fingerprint, gatherer.gather)
