"""Tables of the request database. Change them only together with a migration."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: DateTime(timezone=True)}  # noqa: RUF012


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class Onboarding(Base):
    """A Kommune that takes part. Participation is voluntary; offboarding keeps the record."""

    __tablename__ = "onboardings"

    ags: Mapped[str] = mapped_column(String(8), primary_key=True)
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(200))
    cost_centre: Mapped[str] = mapped_column(String(50))
    # The billing address as XRechnung needs it (migration 0006 split the one-line form).
    street: Mapped[str] = mapped_column(String(200))
    postcode: Mapped[str] = mapped_column(String(10))
    town: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2), default="DE")
    leitweg_id: Mapped[str] = mapped_column(String(46))
    active: Mapped[bool] = mapped_column(default=True)
    onboarded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    onboarded_by: Mapped[str] = mapped_column(String(100))
    offboarded_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    offboarded_by: Mapped[str | None] = mapped_column(String(100), default=None)


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_ags_instance", "ags", "instance"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ags: Mapped[str] = mapped_column(String(8), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # create | change | decommission
    instance: Mapped[str] = mapped_column(String(32))
    service_id: Mapped[str] = mapped_column(String(50))
    service_version: Mapped[int]
    plan: Mapped[str] = mapped_column(String(50))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    schutzbedarf: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    monthly_eur: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), default=None)
    one_time_eur: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), default=None)
    price_lines: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    needs_finance: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Optimistic locking: an UPDATE that finds another version fails instead of overwriting.
    version_id: Mapped[int] = mapped_column(default=1)

    approvals: Mapped[list[Approval]] = relationship(
        back_populates="request", order_by="Approval.id", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version_id}  # noqa: RUF012 (SQLAlchemy API)


class Approval(Base):
    __tablename__ = "approvals"
    # One decision per role and request: two racing approvals cannot both land.
    __table_args__ = (UniqueConstraint("request_id", "role", name="uq_approval_request_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    role: Mapped[str] = mapped_column(String(20))  # ops | finance
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    comment: Mapped[str | None] = mapped_column(Text, default=None)

    request: Mapped[Request] = relationship(back_populates="approvals")


class AuditEvent(Base):
    """Who did what when: every request transition and every onboarding change."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    ags: Mapped[str] = mapped_column(String(8), index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), default=None)
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20), default=None)
    to_state: Mapped[str | None] = mapped_column(String(20), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)


# --- operational records ------------------------------------------------------------------------
# What ran on which Kommune and how it ended; written by the use cases (basisit.app), read by
# `basisit status` and, later, the portal, in one transaction.


class Deployment(Base):
    """One deploy or destroy of a Kommune's stack; outcome running until it ends."""

    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_ags_started", "ags", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ags: Mapped[str] = mapped_column(String(8))
    operation: Mapped[str] = mapped_column(String(16))  # deploy | destroy
    target: Mapped[str | None] = mapped_column(String(16), default=None)
    outcome: Mapped[str] = mapped_column(String(16), default="running")  # succeeded | failed
    actor: Mapped[str | None] = mapped_column(String(100), default=None)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    duration_s: Mapped[float | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resource_count: Mapped[int | None] = mapped_column(default=None)
    request_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    pid: Mapped[int] = mapped_column(default=0)
    host: Mapped[str] = mapped_column(String(255), default="")


class ConfigurationRun(Base):
    """One configure run of a Kommune (the run record file keeps the per-host detail)."""

    __tablename__ = "configuration_runs"
    __table_args__ = (Index("ix_configuration_runs_ags_started", "ags", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ags: Mapped[str] = mapped_column(String(8))
    actor: Mapped[str | None] = mapped_column(String(100), default=None)
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # ansible-runner: successful, failed, ...
    succeeded: Mapped[bool] = mapped_column(default=False)
    changed: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    duration_s: Mapped[float | None] = mapped_column(default=None)
    hosts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # host -> status
    requests: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # id -> error | None
    error: Mapped[str | None] = mapped_column(Text, default=None)
    record_file: Mapped[str | None] = mapped_column(Text, default=None)


class Job(Base):
    """Long work for the portal's workers (queued -> running -> succeeded | failed)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_created", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # deploy | configure | converge | ...
    ags: Mapped[str | None] = mapped_column(String(8), default=None)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    worker: Mapped[str | None] = mapped_column(String(255), default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


# --- usage ledger (contract 3) ------------------------------------------------------------------
# Append-only: rows are never updated or deleted; a correction is a new row naming the row it
# corrects. Quantities are integers in base units (a Numeric would be a float in SQLite).


class LedgerImport(Base):
    """One `basisit ledger import`: its range and the rules it applied."""

    __tablename__ = "ledger_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    # Final hours [range_start, range_end); provisional ones up to provisional_end.
    range_start: Mapped[dt.datetime]
    range_end: Mapped[dt.datetime]
    provisional_end: Mapped[dt.datetime | None] = mapped_column(default=None)
    prometheus_url: Mapped[str] = mapped_column(String(200))
    prometheus_version: Mapped[str] = mapped_column(String(100))
    queries: Mapped[list[str]] = mapped_column(JSON, default=list)
    hold_seconds: Mapped[int]
    gap_rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    boundary_rule: Mapped[str] = mapped_column(Text)
    rows_written: Mapped[int] = mapped_column(default=0)


class LedgerRow(Base):
    """What one instance was billable for or used in one UTC hour under one request."""

    __tablename__ = "ledger_rows"
    __table_args__ = (
        # At most one final row per key: a racing second import fails instead of doubling.
        # Hour first, so it also serves every read by hours (the usage view, the import's
        # comparison); a month of 58 Kommunen is 700,000 rows, and each further index costs
        # the import measurably.
        Index(
            "uq_ledger_rows_final",
            "hour_start", "ags", "instance", "unit", "request_id",
            unique=True,
            sqlite_where=text("status = 'final'"),
            postgresql_where=text("status = 'final'"),
        ),
        # The few provisional rows by hour (migration 0004): a month's sums read final rows
        # through the index above and these through this one, never the whole ledger.
        Index(
            "ix_ledger_rows_provisional", "hour_start",
            sqlite_where=text("status = 'provisional'"),
            postgresql_where=text("status = 'provisional'"),
        ),
        # A row is corrected at most once.
        Index(
            "uq_ledger_rows_corrects", "corrects_id", unique=True,
            sqlite_where=text("corrects_id IS NOT NULL"),
            postgresql_where=text("corrects_id IS NOT NULL"),
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("ledger_imports.id"))
    ags: Mapped[str] = mapped_column(String(8))
    instance: Mapped[str] = mapped_column(String(32))
    catalog_service: Mapped[str] = mapped_column(String(50))
    plan: Mapped[str] = mapped_column(String(50))
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    unit: Mapped[str] = mapped_column(String(50))  # the catalog's: Betriebsstunde, GiB-Monat...
    metric: Mapped[str | None] = mapped_column(String(100), default=None)
    base_unit: Mapped[str] = mapped_column(String(16))  # s | byte_s | count_s | count
    hour_start: Mapped[dt.datetime]
    seconds: Mapped[int]  # billable seconds of the hour under this request
    quantity: Mapped[int] = mapped_column(BigInteger)
    amount_cent: Mapped[int | None] = mapped_column(BigInteger, default=None)  # one-time fee
    status: Mapped[str] = mapped_column(String(16))  # final | provisional
    quality: Mapped[str] = mapped_column(String(16))  # exact | measured | gap | no_measurement
    covered_seconds: Mapped[int | None] = mapped_column(default=None)
    filled_from: Mapped[dt.datetime | None] = mapped_column(default=None)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_rows.id"), default=None)


# --- the ledger's month sums (derived: basisit.store.ledger_sums) -------------------------------
# Unlike the ledger, these rows are updated: the import adds what each of its hours changes, in
# the same transaction as the rows, so a month is billed from about a thousand sums instead of
# 700,000 rows. `basisit ledger verify` recomputes them from the rows; `--repair` rewrites them.


class LedgerMonthLine(Base):
    """One line of a Berlin month: an instance's unit under one plan, summed over its hours."""

    __tablename__ = "ledger_month_lines"
    __table_args__ = (
        UniqueConstraint("month", "ags", "instance", "catalog_service", "unit", "plan",
                         name="uq_ledger_month_lines"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, Berlin
    ags: Mapped[str] = mapped_column(String(8))
    instance: Mapped[str] = mapped_column(String(32))
    catalog_service: Mapped[str] = mapped_column(String(50))
    unit: Mapped[str] = mapped_column(String(50))
    plan: Mapped[str] = mapped_column(String(50))
    metric: Mapped[str | None] = mapped_column(String(100), default=None)
    base_unit: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(BigInteger)  # Σ of the current rows' quantities
    hours: Mapped[int]  # hours with at least one current row
    gap_hours: Mapped[int]
    no_measurement_hours: Mapped[int]
    provisional_hours: Mapped[int]
    fee_rows: Mapped[int]  # rows with a one-time fee (amount_cent is None when 0)
    amount_cent: Mapped[int] = mapped_column(BigInteger)
    first_hour: Mapped[dt.datetime]


class LedgerMonthRequest(Base):
    """How many current rows of a month's line each request has: the line's Nachweis."""

    __tablename__ = "ledger_month_requests"
    __table_args__ = (
        UniqueConstraint("month", "ags", "instance", "catalog_service", "unit", "plan",
                         "request_id", name="uq_ledger_month_requests"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    ags: Mapped[str] = mapped_column(String(8))
    instance: Mapped[str] = mapped_column(String(32))
    catalog_service: Mapped[str] = mapped_column(String(50))
    unit: Mapped[str] = mapped_column(String(50))
    plan: Mapped[str] = mapped_column(String(50))
    request_id: Mapped[int]
    rows: Mapped[int]


class LedgerMonthKommune(Base):
    """A Kommune's billable seconds in a month: per hour its longest billable instance."""

    __tablename__ = "ledger_month_kommunen"
    __table_args__ = (UniqueConstraint("month", "ags", name="uq_ledger_month_kommunen"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    ags: Mapped[str] = mapped_column(String(8))
    billable_seconds: Mapped[int] = mapped_column(BigInteger)


# --- issued e-invoices (basisit.app.invoices) ---------------------------------------------------
# Kept at least ten years (German tax law); no command updates or deletes them, and migration
# 0007's triggers refuse it in the database too.


class InvoiceCounter(Base):
    """The last invoice number of a year of issue: taken inside the issuing transaction, so
    a failed or killed issue consumes none and the numbers have no gaps."""

    __tablename__ = "invoice_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int]


class IssuedInvoice(Base):
    """An invoice (380) or credit note (381) as issued; its XML byte for byte."""

    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_ags_month", "ags", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # EGO-2026-00001
    ags: Mapped[str] = mapped_column(String(8))
    month: Mapped[str] = mapped_column(String(7))  # the billed Berlin month
    type_code: Mapped[str] = mapped_column(String(3))  # 380 invoice | 381 credit note
    preceding_number: Mapped[str | None] = mapped_column(String(20), default=None)
    issue_date: Mapped[dt.date]
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    issued_by: Mapped[str] = mapped_column(String(100))
    net_cent: Mapped[int] = mapped_column(BigInteger)
    vat_cent: Mapped[int] = mapped_column(BigInteger)
    gross_cent: Mapped[int] = mapped_column(BigInteger)
    allowance_cent: Mapped[int] = mapped_column(BigInteger, default=0)
    vat_category: Mapped[str] = mapped_column(String(2))
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    # What "the same amounts" means when a month is issued again: a digest of its lines'
    # product ids and cents and of the VAT treatment.
    amounts_digest: Mapped[str] = mapped_column(String(64))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # for its credit note
    rule_versions: Mapped[dict[str, Any]] = mapped_column(JSON)  # validated against
    sha256: Mapped[str] = mapped_column(String(64))  # of `xml`
    xml: Mapped[bytes] = mapped_column(LargeBinary)
