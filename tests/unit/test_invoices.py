"""`basisit invoice`: the hand-worked October of test_billing_allocation as XRechnung 3.0
invoices — drafts that consume no number, gapless numbers under two issuers and a kill -9,
a credit note and a new invoice after a late ledger row with the original unchanged byte for
byte, both VAT treatments, and broken invoices refused with the rule's id."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from test_billing_allocation import SB, TH, WND, edit, priced  # noqa: F401
from test_billing_report import NOW, OCT, _fill
from typer.testing import CliRunner

from basisit import leitweg
from basisit.app import invoices, ledger
from basisit.cli.main import app
from basisit.errors import ValidationFailed
from basisit.invoicing import cii
from basisit.requests import onboarding
from basisit.store.db import session_scope
from basisit.store.models import InvoiceCounter, IssuedInvoice, LedgerImport, LedgerRow

RUN = CliRunner()
NS = {"rsm": cii.RSM, "ram": cii.RAM, "udt": cii.UDT}
ADDRESSES = {TH: "Im Kloster 1, 66636 Tholey", WND: "Mommstraße 21-31, 66606 St. Wendel",
             SB: "Rathausplatz 1, 66111 Saarbrücken"}  # fmt: skip


@pytest.fixture
def october(priced: Path, database: str) -> str:  # noqa: F811
    """October's ledger of the three Kommunen, each onboarded with its billing address."""
    _fill(database)
    with session_scope() as s:
        for ags, address in ADDRESSES.items():
            onboarding.onboard(s, ags=ags, contact_name="Kämmerei", contact_email="k@x.de",
                               cost_centre="KST-1", billing_address=address,
                               leitweg_id=leitweg.make(ags), actor="test")  # fmt: skip
    return database


def _totals(xml: bytes) -> dict[str, str]:
    root = ET.fromstring(xml)
    sums = root.find(".//ram:SpecifiedTradeSettlementHeaderMonetarySummation", NS)
    assert sums is not None
    found = {child.tag.split("}")[1]: child.text or "" for child in sums}
    found["number"] = root.findtext("rsm:ExchangedDocument/ram:ID", namespaces=NS) or ""
    found["type"] = root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) or ""
    found["buyer"] = root.findtext(".//ram:BuyerReference", namespaces=NS) or ""
    found["lines"] = str(len(root.findall(".//ram:IncludedSupplyChainTradeLineItem", NS)))
    return found


def _numbers() -> list[tuple[str, str, str | None]]:
    with session_scope() as s:
        rows = s.execute(
            select(
                IssuedInvoice.number, IssuedInvoice.type_code, IssuedInvoice.preceding_number
            ).order_by(IssuedInvoice.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_draft_is_validated_and_consumes_no_number(october: str, tmp_path: Path) -> None:
    out = RUN.invoke(app, ["invoice", "--month", "2026-10", "--ags", TH, "-o", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "xsd ✓" in out.output and "xrechnung ✓" in out.output
    xml = (tmp_path / f"ENTWURF-{TH}-2026-10.xml").read_bytes()
    # Tholey's 102,55 € of the hand-worked October, 19 % VAT rounded half up once.
    assert _totals(xml) | {"lines": ""} == {
        "LineTotalAmount": "102.55", "TaxBasisTotalAmount": "102.55", "TaxTotalAmount": "19.48",
        "GrandTotalAmount": "122.03", "DuePayableAmount": "122.03",
        "number": f"ENTWURF-{TH}-2026-10", "type": "380", "buyer": leitweg.make(TH), "lines": "",
    }  # fmt: skip
    assert int(_totals(xml)["lines"]) == 7  # six direct lines and the overhead share
    assert _numbers() == []
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(InvoiceCounter)) == 0


def test_issuing_numbers_without_gaps_and_never_twice(october: str, tmp_path: Path) -> None:
    first = invoices.issue("2026-10", TH, tmp_path / "th.xml", now=NOW)
    assert [d.number for d in first.written] == ["EGO-2026-00001"]
    kept = invoices.archive_dir() / "2026" / "EGO-2026-00001.xml"
    assert kept.read_bytes() == (tmp_path / "th.xml").read_bytes()
    with session_scope() as s:
        row = s.scalars(select(IssuedInvoice)).one()
        assert row.sha256 == hashlib.sha256(kept.read_bytes()).hexdigest()
        assert (row.net_cent, row.vat_cent, row.gross_cent) == (10255, 1948, 12203)
        assert (row.rule_versions["xrechnung"], row.rule_versions["en16931"]) == ("3.0.2", "1.3.16")
    # The same month with the same amounts again: nothing written, no number taken.
    again = invoices.issue("2026-10", TH, tmp_path / "again.xml", now=NOW)
    assert again.written == () and again.current == "EGO-2026-00001"
    assert not (tmp_path / "again.xml").exists()
    second = invoices.issue("2026-10", SB, now=NOW)
    assert [d.number for d in second.written] == ["EGO-2026-00002"]
    assert _numbers() == [("EGO-2026-00001", "380", None), ("EGO-2026-00002", "380", None)]


def _late_row() -> None:
    """A late ledger row for Tholey's October: the plan change's one-time fee (10,00 €)."""
    with session_scope() as s:
        run = LedgerImport(actor="test", range_start=OCT, range_end=OCT, hold_seconds=300,
                           prometheus_url="-", prometheus_version="2.42.0",
                           boundary_rule="-")  # fmt: skip
        s.add(run)
        s.flush()
        s.add(LedgerRow(import_id=run.id, ags=TH, instance="dateiablage",
                        catalog_service="fileshare", plan="M", request_id=2, unit="Einrichtung",
                        base_unit="count", hour_start=OCT + dt.timedelta(hours=336), seconds=0,
                        quantity=1, amount_cent=1000, status="final", quality="exact"))  # fmt: skip
    ledger.verify("2026-10", repair=True)


def test_a_late_ledger_row_gives_a_credit_note_and_a_new_invoice(
    october: str, tmp_path: Path
) -> None:
    invoices.issue("2026-10", TH, now=NOW)
    original = (invoices.archive_dir() / "2026" / "EGO-2026-00001.xml").read_bytes()
    _late_row()
    result = invoices.issue("2026-10", TH, tmp_path / "new.xml", now=NOW)
    assert [(d.number, d.type_code) for d in result.written] == [
        ("EGO-2026-00002", "381"), ("EGO-2026-00003", "380")]  # fmt: skip
    credit = _totals((tmp_path / "EGO-2026-00002.xml").read_bytes())
    assert (credit["type"], credit["GrandTotalAmount"]) == ("381", "122.03")
    new = _totals((tmp_path / "new.xml").read_bytes())
    # 10,00 € more net: 112,55 € + 21,38 € VAT (21,3845 rounded half up).
    assert (new["number"], new["GrandTotalAmount"]) == ("EGO-2026-00003", "133.93")
    assert _numbers()[1] == ("EGO-2026-00002", "381", "EGO-2026-00001")
    with session_scope() as s:
        stored = s.scalars(select(IssuedInvoice).where(IssuedInvoice.number == "EGO-2026-00001"))
        assert stored.one().xml == original
    assert (invoices.archive_dir() / "2026" / "EGO-2026-00001.xml").read_bytes() == original
    # And once more: the new invoice is in force, nothing changes.
    assert invoices.issue("2026-10", TH, now=NOW).current == "EGO-2026-00003"


def test_an_issued_invoice_cannot_be_changed_in_the_database(october: str) -> None:
    invoices.issue("2026-10", TH, now=NOW)
    for statement in ("UPDATE invoices SET gross_cent = 1", "DELETE FROM invoices"):
        with pytest.raises(Exception, match="never changes"), session_scope() as s:
            s.execute(text(statement))
    assert _numbers() == [("EGO-2026-00001", "380", None)]


def test_the_running_month_can_be_drafted_but_not_issued(october: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="has not ended"):
        invoices.issue("2026-10", TH, now=dt.datetime(2026, 10, 31, 12, tzinfo=dt.UTC))
    draft = invoices.draft(
        "2026-10", TH, tmp_path, now=dt.datetime(2026, 10, 31, 12, tzinfo=dt.UTC)
    )
    assert draft.number == f"ENTWURF-{TH}-2026-10" and _numbers() == []


def test_an_exempt_invoice_validates_too(october: str, priced: Path, tmp_path: Path) -> None:  # noqa: F811
    edit(
        priced / "billing.yaml",
        "    category: S\n    rate_percent: 19\n",
        '    category: E\n    exemption_reason: "Steuerfrei nach § 4 Nr. 29 UStG"\n',
    )
    doc = invoices.issue("2026-10", WND, tmp_path / "wnd.xml", now=NOW).written[0]
    assert doc.validation.ok and (doc.vat_cent, doc.gross_cent) == (0, 10131)
    xml = (tmp_path / "wnd.xml").read_text("utf-8")
    assert "<ram:CategoryCode>E</ram:CategoryCode>" in xml and "§ 4 Nr. 29 UStG" in xml


@pytest.mark.parametrize(
    ("break_it", "rule"),
    [
        (lambda xml: xml.replace(f"<ram:BuyerReference>{leitweg.make(TH)}</ram:BuyerReference>"
                                 .encode(), b""), "BR-DE-15"),
        (lambda xml: xml.replace(b"<ram:GrandTotalAmount>122.03", b"<ram:GrandTotalAmount>122.13"),
         "BR-CO-15"),
    ],
)  # fmt: skip
def test_a_broken_invoice_is_refused_with_its_rule_and_consumes_no_number(
    october: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, break_it: object, rule: str
) -> None:
    real = cii.to_xml
    monkeypatch.setattr(cii, "to_xml", lambda invoice: break_it(real(invoice)))  # type: ignore[operator]
    with pytest.raises(ValidationFailed) as refused:
        invoices.issue("2026-10", TH, tmp_path / "x.xml", now=NOW)
    assert any(rule in problem for problem in refused.value.problems), refused.value.problems
    assert "no number consumed" in str(refused.value)
    assert _numbers() == [] and not (tmp_path / "x.xml").exists()
    monkeypatch.setattr(cii, "to_xml", real)
    assert invoices.issue("2026-10", TH, now=NOW).written[0].number == "EGO-2026-00001"


_ISSUE = """
import datetime as dt, sys
from basisit.app import invoices
now = dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
def progress(text):
    if sys.argv[2] == "hang" and text.startswith("writing"):
        print("IN-TRANSACTION", flush=True)
        sys.stdin.read()  # until killed
print(invoices.issue("2026-10", sys.argv[1], now=now, progress=progress).current, flush=True)
"""


def _issuer(ags: str, mode: str = "run") -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _ISSUE, ags, mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=os.environ)  # fmt: skip


def test_two_issuers_at_once_get_consecutive_numbers(october: str) -> None:
    procs = [_issuer(ags) for ags in (TH, WND, SB)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sorted(outs) == ["EGO-2026-00001", "EGO-2026-00002", "EGO-2026-00003"]
    assert sorted(n for n, _t, _p in _numbers()) == sorted(outs)


def test_kill_9_while_issuing_stores_nothing_and_consumes_no_number(october: str) -> None:
    proc = _issuer(TH, "hang")
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "IN-TRANSACTION"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert _numbers() == []
    assert invoices.issue("2026-10", TH, now=NOW).written[0].number == "EGO-2026-00001"
