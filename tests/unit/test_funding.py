"""Start-up funding, every amount by hand to the cent: a Kommune reaching its cap, the budget
running out within a month, and the rate changing at the new year; then October 2026 of
test_billing_allocation funded through the ledger, in the report, FOCUS and the invoice.

The programme of the first tests funds `mail` and the overhead share, 50 % in 2026 and 30 %
in 2027, at most 120,00 € per Kommune, 220,00 € in all. Each month the same bills (ct):
  Tholey      mail 12.345, overhead 1.001                   (eligible 13.346)
  St. Wendel  mail  3.333, database 2.000 (not funded), no overhead (eligible 3.333)
  Saarbrücken mail  5.001, overhead   999                   (eligible 6.000)
November 2026 (50 %): claims 6.673; 1.666,5 -> 1.667 (half up); 3.000; Σ 11.340 ≤ 22.000.
  Tholey's 6.673 spread over 12.345 : 1.001 = 6.172,5 : 500,5: floors 6.672, the 1 ct to
  the earlier of the tied remainders: mail 6.173, overhead 500. Saarbrücken's 3.000 =
  2.500,5 : 499,5 -> mail 2.501, overhead 499. Left 10.660.
December 2026 (50 %): Tholey has 12.000 − 6.673 = 5.327 of its cap left: claim 5.327 (it
  reaches its cap); 1.667; 3.000; Σ 9.994 ≤ 10.660, left 666. Tholey's 5.327 = 4.927,455 :
  399,545 -> floors 5.326, the 1 ct to the overhead: mail 4.927, overhead 400.
January 2027 (30 %): Tholey at its cap claims nothing; St. Wendel 999,9 -> 1.000,
  Saarbrücken 1.800: Σ 2.800 > 666, the budget runs out. 666 pro rata over 999,9 : 1.800 =
  237,84 : 428,16 -> floors 665, the 1 ct to St. Wendel: 238 and 428. Saarbrücken's 428 =
  356,74 : 71,26 -> mail 357, overhead 71. Left 0.
February 2027: nothing is left; nobody is funded.
"""

from __future__ import annotations

import datetime as dt
import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from catalog_copy import edit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_billing_allocation import SB, TH, WND, october, priced  # noqa: F401
from test_billing_report import NOW, _fill
from test_invoices import ADDRESSES, NS, _totals
from typer.testing import CliRunner

from basisit import kommunen, leitweg
from basisit.app import billing, invoices
from basisit.billing import config as billing_config
from basisit.billing.allocate import allocate
from basisit.billing.config import Programme
from basisit.billing.funding import fund
from basisit.billing.model import BASE, KommuneBill, Line, MonthBill
from basisit.catalog import load_catalog
from basisit.cli.main import app
from basisit.errors import ValidationFailed
from basisit.requests import onboarding
from basisit.store.db import session_scope

RUN = CliRunner()

PROGRAMME = Programme(
    id="dok", name="Digitalisierungsoffensive", budget_cent=22_000, first_month="2026-11",
    last_month="2027-12", services=frozenset({"mail"}), overhead=True,
    rates=((2026, Fraction(1, 2)), (2027, Fraction(3, 10))), cap_cent=12_000,
)  # fmt: skip


def _line(service: str, cents: int) -> Line:
    return Line(
        kind=BASE, instance=f"{service}-1", service_id=service, service_name=service,
        plan="S", plan_name="S", description=service, quantity=Fraction(1), unit="Monat",
        unit_price=Decimal(cents) / 100, included=Fraction(0), exact=Fraction(cents, 100),
        cents=cents, seconds=0, request_ids=(1,), ledger_unit="Betriebsstunde",
        ledger_quantity_base=0,
    )  # fmt: skip


def _kommune(ags: str, overhead: int, *lines: Line) -> KommuneBill:
    k = kommunen.get(ags)
    direct = sum(line.cents for line in lines)
    return KommuneBill(
        ags=ags, name=k.name, typ=k.typ, einwohner=k.einwohner, participation=Fraction(1),
        weight=Fraction(1), lines=lines, direct_exact=Fraction(direct, 100),
        direct_cents=direct, overhead_exact=Fraction(overhead, 100), overhead_cents=overhead,
    )  # fmt: skip


def _month(month: str) -> MonthBill:
    year, mon = (int(p) for p in month.split("-"))
    start = dt.datetime(year, mon, 1, tzinfo=dt.UTC)
    k = (
        _kommune(SB, 999, _line("mail", 5_001)),
        _kommune(WND, 0, _line("mail", 3_333), _line("database", 2_000)),
        _kommune(TH, 1_001, _line("mail", 12_345)),
    )
    return MonthBill(
        month=month, start=start, end=start + dt.timedelta(days=28), hours=672,
        provisional=False, key=billing_config.load().key[0], method_used="default",
        pool_cents=2_000, unallocated_cents=0, kommunen=tuple(sorted(k, key=lambda x: x.ags)),
    )  # fmt: skip


def _subsidies(bill: MonthBill) -> dict[str, tuple[list[int], int]]:
    return {k.ags: ([ln.subsidy_cents for ln in k.lines], k.overhead_subsidy_cents)
            for k in bill.kommunen}  # fmt: skip


def test_cap_budget_running_out_and_the_new_years_rate_by_hand() -> None:
    months = ["2026-11", "2026-12", "2027-01", "2027-02"]
    nov, dec, jan, feb = fund([_month(m) for m in months], [PROGRAMME])
    assert _subsidies(nov) == {TH: ([6173], 500), WND: ([1667, 0], 0), SB: ([2501], 499)}
    assert _subsidies(dec) == {TH: ([4927], 400), WND: ([1667, 0], 0), SB: ([2501], 499)}
    assert _subsidies(jan) == {TH: ([0], 0), WND: ([238, 0], 0), SB: ([357], 71)}
    assert _subsidies(feb) == {TH: ([0], 0), WND: ([0, 0], 0), SB: ([0], 0)}
    uses = [b.funding[0] for b in (nov, dec, jan, feb)]
    assert [u.rate for u in uses] == [Fraction(1, 2)] * 2 + [Fraction(3, 10)] * 2
    assert [(u.used_before_cents, u.used_cents, u.left_cents) for u in uses] == [
        (0, 11_340, 10_660), (11_340, 9_994, 666), (21_334, 666, 0), (22_000, 0, 0),
    ]  # fmt: skip
    assert [u.exhausted for u in uses] == [False, False, True, True]
    assert [u.capped for u in uses] == [(), (TH,), (), ()]
    assert dict(nov.funding[0].by_service) == {"mail": 10_341, "overhead": 999}
    # The Kommune pays the rest of each line; every total reconciles to the cent.
    th = next(k for k in dec.kommunen if k.ags == TH)
    assert (th.total_cents, th.subsidy_cents, th.payable_cents) == (13_346, 5_327, 8_019)
    assert sum(b.subsidy_cents for b in (nov, dec, jan, feb)) == 22_000
    assert all(b.reconciles() == [] for b in (nov, dec, jan, feb))
    # Outside its period a programme pays nothing and is not listed.
    (oct_,) = fund([_month("2026-10")], [PROGRAMME])
    assert oct_.funding == () and oct_.subsidy_cents == 0


def test_a_later_programme_funds_what_an_earlier_one_left() -> None:
    full = replace(PROGRAMME, id="land", name="Land", services=frozenset({"mail", "database"}),
                   overhead=False, rates=((2026, Fraction(1)), (2027, Fraction(1))),
                   cap_cent=None, budget_cent=10**9)  # fmt: skip
    (nov,) = fund([_month("2026-11")], [PROGRAMME, full])
    # The first pays half, the second all that is left of mail and database: only
    # Tholey's and Saarbrücken's unfunded overhead halves remain to pay.
    assert {k.ags: k.payable_cents for k in nov.kommunen} == {TH: 501, WND: 0, SB: 500}
    assert [ln.funded_by for ln in next(k for k in nov.kommunen if k.ags == TH).lines] == [
        ("dok", "land")
    ]


def test_programme_settings_are_checked(priced: Path) -> None:  # noqa: F811
    billing_yaml = priced / "billing.yaml"
    good = (
        billing_yaml.read_text(encoding="utf-8")
        + """\
funding:
  - id: dok
    name: "Digitalisierungsoffensive"
    budget_eur: 100.00
    from: "2026-11"
    until: "2027-12"
    services: [mail]
    rates: [{year: 2026, percent: 50}, {year: 2027, percent: 30}]
"""
    )
    cases = [
        ("{year: 2027, percent: 30}", "{year: 2028, percent: 30}",
         "funding dok: rates: no rate for 2027"),
        ('until: "2027-12"', 'until: "2026-10"', "until 2026-10 is before from 2026-11"),
        ("percent: 50}", "percent: 150}", "150 is greater than the maximum of 100"),
        ("budget_eur: 100.00", "budget_eur: 100.001", "is not a multiple of 0.01"),
    ]  # fmt: skip
    for old, new, message in cases:
        billing_yaml.write_text(good.replace(old, new), encoding="utf-8")
        with pytest.raises(ValidationFailed, match=message):
            billing_config.load()
    billing_yaml.write_text(good.replace("[mail]", "[mail, telefonie]"), encoding="utf-8")
    with pytest.raises(ValidationFailed, match="service 'telefonie' is not in the catalog"):
        billing.month_bill("2026-11", now=NOW)


# October 2026 of test_billing_allocation, funded at 50 % (file share, directory, overhead):
#   Tholey: 50 % of 992 + 2.196 + 248 + 330 + 5.000 + overhead 1.089 = 4.927,5 -> 4.928,
#     spread 496,05 : 1.098,11 : 124,01 : 165,02 : 2.500,25 : 544,56 -> floors 4.927, the
#     1 ct to the overhead: 496, 1.098, 124, 165, 2.500, monitoring 0 (not funded), 545.
#   St. Wendel: its database is not funded; 50 % of the overhead 771 = 385,5 -> 386.
#   Saarbrücken: 50 % of 2.500 + 4.800 + 6.473 = 6.886,5 -> 6.887 = 1.250,09 : 2.400,17 :
#     3.236,73 -> 1.250, 2.400, 3.237.
#   Subsidy 12.201 of 34.559; the Kommunen pay 22.358.
OCTOBER_FUNDING = """\
# Start-up funding in the test
funding:
  - id: dok-anschub
    name: "Digitalisierungsoffensive Kommunen"
    budget_eur: 50000.00
    from: "2026-10"
    until: "2027-12"
    services: [fileshare, directory]
    overhead: true
    rates: [{year: 2026, percent: 50}, {year: 2027, percent: 25}]
"""


@pytest.fixture
def funded_october(priced: Path, database: str) -> Path:  # noqa: F811
    with (priced / "billing.yaml").open("a", encoding="utf-8") as f:
        f.write(OCTOBER_FUNDING)
    _fill(database)
    return priced


def test_october_funded_from_the_ledger(funded_october: Path, tmp_path: Path) -> None:
    bill = billing.month_bill("2026-10", now=NOW)
    assert _subsidies(bill) == {
        TH: ([496, 1098, 124, 165, 2500, 0], 545), WND: ([0, 0, 0, 0], 386),
        SB: ([1250, 2400, 0], 3237),
    }  # fmt: skip
    assert (bill.total_cents, bill.subsidy_cents, bill.payable_cents) == (34_559, 12_201, 22_358)
    # The pure allocation is unchanged by funding: the same cost, before any subsidy.
    plain = allocate(october(), load_catalog(), billing_config.load(), kommunen.get)
    assert [k.total_cents for k in plain.kommunen] == [k.total_cents for k in bill.kommunen]

    csv = billing.write_report("2026-10", "csv", tmp_path, now=NOW).paths[0]
    text = csv.read_text("utf-8-sig")
    assert "gesamt;102,55;Zuschuss;49,28;zu zahlen;53,27" in text
    assert "Gesamtsumme;345,59;Zuschuss;122,01;zu zahlen;223,58" in text
    assert (
        "Anschubfinanzierung;Digitalisierungsoffensive Kommunen;Satz;50,00;Budget;50.000,00" in text
    )
    html = billing.write_report("2026-10", "html", tmp_path, now=NOW).paths[0]
    page = html.read_text("utf-8")
    assert 'Zu zahlen Tholey</th><td class="num">53,27 €' in page
    assert "✗" not in page

    parquet = billing.write_report("2026-10", "focus", tmp_path, now=NOW).paths[0]
    rows = pq.read_table(parquet).to_pylist()
    credits = [r for r in rows if r["ChargeCategory"] == "Credit"]
    assert sum(r["BilledCost"] for r in credits) == Decimal("-122.01")
    assert all(r["BilledCost"] == r["ListCost"] == r["EffectiveCost"] for r in credits)
    tholey = sum(r["BilledCost"] for r in rows if r["SubAccountId"] == TH)
    assert tholey == Decimal("53.27")  # FOCUS: what Tholey pays


def test_the_invoice_shows_the_subsidy_as_an_allowance_on_each_line(
    funded_october: Path, database: str, tmp_path: Path
) -> None:
    with session_scope() as s:
        onboarding.onboard(s, ags=TH, contact_name="Kämmerei", contact_email="k@x.de",
                           cost_centre="KST-1", billing_address=ADDRESSES[TH],
                           leitweg_id=leitweg.make(TH), actor="test")  # fmt: skip
    result = invoices.issue("2026-10", TH, tmp_path / "th.xml", now=NOW)
    (document,) = result.written
    assert document.validation.ok, document.validation.problems()
    xml = (tmp_path / "th.xml").read_bytes()
    totals = _totals(xml)
    assert totals["LineTotalAmount"] == "53.27"  # 102,55 € less 49,28 € of funding
    assert (totals["TaxTotalAmount"], totals["GrandTotalAmount"]) == ("10.12", "63.39")
    root = ET.fromstring(xml)
    allowances = [
        a.findtext("ram:ActualAmount", namespaces=NS)
        for a in root.iterfind(".//ram:SpecifiedLineTradeSettlement/"
                               "ram:SpecifiedTradeAllowanceCharge", NS)
    ]  # fmt: skip
    assert allowances == ["4.96", "10.98", "1.24", "1.65", "25.00", "5.45"]
    assert "Anschubfinanzierung Digitalisierungsoffensive Kommunen" in xml.decode()


def test_a_bad_programme_file_is_named_by_catalog_validate(priced: Path) -> None:  # noqa: F811
    with (priced / "billing.yaml").open("a", encoding="utf-8") as f:
        f.write(OCTOBER_FUNDING.replace("percent: 25}", "percent: 25}, {year: 2029, percent: 1}"))
    result = RUN.invoke(app, ["catalog", "validate", "--dir", str(priced)])
    assert result.exit_code == 4
    assert "funding dok-anschub: rates: 2029 is outside the period" in result.output


def test_the_funding_report_says_when_the_budget_runs_out(
    funded_october: Path, tmp_path: Path
) -> None:
    # 300,00 € of budget: October uses 122,01 €, so 177,99 € are left. The current rate is
    # October's eligible cost, 244,02 € a month: November at 50 % uses 122,01 €, leaving
    # 55,98 €, which December's 122,01 € exceeds: the budget runs out in December 2026.
    edit(funded_october / "billing.yaml", "budget_eur: 50000.00", "budget_eur: 300.00")
    out = tmp_path / "funding.html"
    result = RUN.invoke(app, ["report", "funding", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "reicht das Budget bis Dezember 2026" in result.output
    page = out.read_text("utf-8")
    assert page.count("<svg") == 2 and "Zuschüsse je Monat" in page
    assert "Verbraucht: 122,01 €, verbleibend: 177,99 €." in page
    assert '<tr class="prognose"><th scope="row">November 2026</th>' in page

    csv_out = tmp_path / "funding.csv"
    assert RUN.invoke(app, ["report", "funding", "-o", str(csv_out)]).exit_code == 0
    text = csv_out.read_text("utf-8-sig")
    assert "dok-anschub;2026-10;Gemeinkostenanteil;41,68;177,99;" in text
    assert "dok-anschub;2026-10;fileshare;43,83;177,99;" in text
    assert "dok-anschub;2026-11;;122,01;55,98;Prognose" in text
    assert "dok-anschub;2026-12;;55,98;0,00;Prognose" in text

    bad = RUN.invoke(app, ["report", "funding", "-o", str(tmp_path / "funding.pdf")])
    assert bad.exit_code != 0 and "is a .html or .csv file" in bad.output
    assert not (tmp_path / "funding.pdf").exists()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cents=st.lists(
        st.tuples(st.integers(0, 50_000), st.integers(0, 5_000)), min_size=3, max_size=3
    ),
    months=st.integers(1, 6),
    budget=st.integers(0, 200_000),
    cap=st.one_of(st.none(), st.integers(0, 60_000)),
    percent=st.tuples(st.integers(0, 100), st.integers(0, 100)),
)
def test_no_budget_or_cap_is_ever_exceeded_and_every_cent_reconciles(
    cents: list[tuple[int, int]], months: int, budget: int, cap: int | None,
    percent: tuple[int, int],
) -> None:  # fmt: skip
    programme = replace(PROGRAMME, budget_cent=budget, cap_cent=cap,
                        rates=((2026, Fraction(percent[0], 100)),
                               (2027, Fraction(percent[1], 100))))  # fmt: skip
    template = _month("2026-11")
    bills = []
    for i in range(months):
        month = f"{2026 + (10 + i) // 12}-{(10 + i) % 12 + 1:02d}"
        kommunen_ = tuple(
            replace(k, lines=(_line("mail", mail),), direct_cents=mail, overhead_cents=share)
            for k, (mail, share) in zip(template.kommunen, cents, strict=True)
        )
        pool = sum(share for _mail, share in cents)
        bills.append(replace(template, month=month, kommunen=kommunen_, pool_cents=pool))
    funded = fund(bills, [programme])  # fund() itself asserts that every bill reconciles
    paid = sum(b.subsidy_cents for b in funded)
    assert paid <= budget
    for ags in (TH, WND, SB):
        got = sum(k.subsidy_cents for b in funded for k in b.kommunen if k.ags == ags)
        assert cap is None or got <= cap
    # Nobody is paid more than the rate of what it cost, rounded up (at most a cent).
    for b in funded:
        rate = programme.rate_of(int(b.month[:4]))
        for k in b.kommunen:
            assert k.subsidy_cents <= math.ceil(rate * (k.lines[0].cents + k.overhead_cents))
    # When the budget ran out, it was used to the cent.
    if any(u.exhausted for b in funded for u in b.funding):
        assert paid == budget
