"""XRechnung 3.0 CII invoices through the four stages of basisit.invoicing.validate, on the rules
that scripts/bootstrap.sh caches (scripts/xrechnung-rules.sh); without them these tests fail
with the command that fetches them, they are not skipped.

The valid invoices are hand-written fixtures; each broken one is a valid one with one change,
and the helper refuses a change that does not apply, so no test passes on an unchanged file.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import asdict
from pathlib import Path

import pytest

from basisit import leitweg, paths
from basisit.errors import PrerequisiteMissing, ValidationFailed
from basisit.invoicing import RULES, Validation, require_valid, rules_dir, validate
from basisit.invoicing.validate import STAGES, _stylesheet, _svrl_findings, compile_rules

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xrechnung"
VAT_19 = FIXTURES / "invoice-vat-19.xml"
VAT_EXEMPT = FIXTURES / "invoice-vat-exempt.xml"


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _changed(path: Path, old: str, new: str) -> bytes:
    """The fixture with `old` (which must occur exactly once) replaced by `new`."""
    text = _text(path)
    assert text.count(old) == 1, f"{path.name} has {text.count(old)} times {old!r}"
    return text.replace(old, new).encode("utf-8")


def _assert_all_passed(result: Validation) -> None:
    assert result.ok, "\n".join(result.problems())
    assert [s.stage for s in result.stages] == list(STAGES)
    assert all(s.passed and not s.skipped for s in result.stages)
    assert result.failures == ()
    # The schematron really looked at the invoice: rule contexts matched.
    assert result.stage("en16931").fired > 50 and result.stage("xrechnung").fired > 10


def test_the_invoice_at_19_percent_passes_every_stage() -> None:
    text = _text(VAT_19)
    # What the fixture is meant to be, so that passing means something.
    assert "<ram:ID>urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0<" in text
    assert text.count("<ram:IncludedSupplyChainTradeLineItem>") == 2
    assert "<ram:CategoryCode>S</ram:CategoryCode>" in text and "<ram:IBANID>" in text
    assert leitweg.problem("10046118-0001-83") is None and "10046118-0001-83" in text
    result = validate(VAT_19.read_bytes())
    _assert_all_passed(result)
    assert result.findings == ()  # not even a warning


def test_the_vat_exempt_invoice_passes_every_stage() -> None:
    text = _text(VAT_EXEMPT)
    assert "<ram:CategoryCode>E</ram:CategoryCode>" in text
    assert "<ram:ExemptionReason>" in text
    assert leitweg.problem("10042113-0001-63") is None and "10042113-0001-63" in text
    _assert_all_passed(validate(VAT_EXEMPT.read_bytes()))


def test_an_exempt_invoice_without_its_exemption_reason_fails_br_e_10() -> None:
    """Proves the category E rules are applied to the exempt fixture."""
    reason = (
        "<ram:ExemptionReason>Umsatzsteuerfrei nach § 4 Nr. 29 UStG (Leistung eines "
        "Zweckverbands an sein Mitglied)</ram:ExemptionReason>"
    )
    result = validate(_changed(VAT_EXEMPT, reason, ""))
    assert not result.ok and result.failed_stage == "en16931"
    assert result.stage("en16931").rules == {"BR-E-10"}


def test_no_buyer_reference_fails_br_de_15_in_the_xrechnung_stage() -> None:
    xml = _changed(VAT_19, "<ram:BuyerReference>10046118-0001-83</ram:BuyerReference>", "")
    result = validate(xml)
    assert not result.ok
    assert result.stage("xsd").passed and result.stage("en16931").passed  # only KoSIT's rule
    xrechnung = result.stage("xrechnung")
    assert not xrechnung.passed and xrechnung.rules == {"BR-DE-15"}
    (finding,) = xrechnung.findings
    assert finding.flag == "fatal" and "BT-10" in finding.message
    assert finding.location == "/rsm:CrossIndustryInvoice[1]"
    assert result.failed_stage == "xrechnung"


def test_a_wrong_grand_total_fails_br_co_15_in_the_en16931_stage() -> None:
    xml = _changed(
        VAT_19,
        "<ram:GrandTotalAmount>404.60</ram:GrandTotalAmount>",
        "<ram:GrandTotalAmount>400.60</ram:GrandTotalAmount>",
    )
    result = validate(xml)
    assert not result.ok and result.stage("xsd").passed
    en16931 = result.stage("en16931")
    assert not en16931.passed
    # 404.60 is lines + VAT (BR-CO-15); the amount due no longer equals the total (BR-CO-16).
    assert en16931.rules == {"BR-CO-15", "BR-CO-16"}
    assert all(f.flag == "fatal" for f in en16931.findings)
    # Both schematron stages run: every business rule is reported at once.
    assert not result.stage("xrechnung").skipped
    assert result.failed_stage == "en16931"


def test_an_element_the_xsd_does_not_allow_fails_the_xsd_stage_and_stops() -> None:
    xml = _changed(
        VAT_19,
        "<ram:PaymentReference>BIT-2026-11-10046118</ram:PaymentReference>",
        "<ram:PaymentReference>BIT-2026-11-10046118</ram:PaymentReference>"
        "<ram:Colour>red</ram:Colour>",
    )
    result = validate(xml)
    assert not result.ok and result.failed_stage == "xsd"
    xsd = result.stage("xsd")
    assert not xsd.passed and xsd.rules == {"SCHEMAV_ELEMENT_CONTENT"}
    (finding,) = xsd.findings
    assert "Colour" in finding.message and finding.location.endswith("/ram:Colour")
    assert finding.line is not None and finding.line > 100
    for stage in ("en16931", "xrechnung"):
        later = result.stage(stage)
        assert not later.passed and later.findings == ()
        assert later.skipped.startswith("not run: the invoice does not pass the CII D16B XSD")


def test_malformed_xml_is_a_finding_of_the_xml_stage_not_an_exception() -> None:
    xml = VAT_19.read_bytes()
    result = validate(xml[: len(xml) // 2])  # cut off in the middle
    assert not result.ok and result.failed_stage == "xml"
    (finding,) = result.stage("xml").findings
    assert finding.flag == "fatal" and finding.message.startswith("not well-formed XML")
    assert finding.line is not None
    assert all(result.stage(s).skipped for s in ("xsd", "en16931", "xrechnung"))


def test_a_doctype_is_refused_so_no_entity_is_resolved() -> None:
    xml = b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>'
    result = validate(xml)
    assert result.failed_stage == "xml"
    assert result.stage("xml").rules == {"XML_DOCTYPE"}
    assert "root:" not in str(asdict(result))


def test_a_warning_is_kept_but_does_not_fail() -> None:
    # A wrong IBAN check digit is BR-DE-19, which KoSIT flags as a warning ("soll").
    xml = _changed(VAT_19, "DE47590501010001234567", "DE48590501010001234567")
    result = validate(xml)
    assert result.ok
    (finding,) = result.findings
    assert (finding.rule, finding.flag, finding.fails) == ("BR-DE-19", "warning", False)
    assert finding.location.endswith("/ram:SpecifiedTradeSettlementPaymentMeans[1]")


def test_svrl_flags_decide_what_fails() -> None:
    svrl = """<svrl:schematron-output xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
      <svrl:fired-rule context="/"/>
      <svrl:failed-assert id="R-1" flag="warning" location="/a"><svrl:text> soft
        </svrl:text></svrl:failed-assert>
      <svrl:failed-assert id="R-2" location="/b"><svrl:text>no flag</svrl:text></svrl:failed-assert>
      <svrl:successful-report id="R-3" flag="fatal" location="/c"><svrl:text>x</svrl:text>
      </svrl:successful-report>
      <svrl:successful-report id="R-4"><svrl:text>note</svrl:text></svrl:successful-report>
      <svrl:failed-assert id="R-5" flag="bogus"><svrl:text>?</svrl:text></svrl:failed-assert>
    </svrl:schematron-output>"""
    findings, fired = _svrl_findings(svrl)
    assert fired == 1
    assert [(f.rule, f.flag, f.fails) for f in findings] == [
        ("R-1", "warning", False),
        ("R-2", "error", True),  # a failed assertion without a flag is an error
        ("R-3", "fatal", True),
        ("R-4", "information", False),
        ("R-5", "error", True),  # an unknown flag fails rather than passes unread
    ]
    assert findings[0].message == "soft"


def test_require_valid_raises_with_every_failing_rule() -> None:
    xml = _changed(VAT_19, "<ram:BuyerReference>10046118-0001-83</ram:BuyerReference>", "")
    with pytest.raises(ValidationFailed) as failed:
        require_valid(xml)
    assert any(p.startswith("xrechnung: BR-DE-15 [fatal]") for p in failed.value.problems)
    assert require_valid(VAT_19.read_bytes()).ok


def test_each_stylesheet_is_compiled_once_per_process() -> None:
    compile_rules()
    before = _stylesheet.cache_info()
    validate(VAT_19.read_bytes())
    validate(VAT_EXEMPT.read_bytes())
    after = _stylesheet.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 4
    seconds = compile_rules()
    assert set(seconds) == {"xsd", "en16931", "xrechnung"}
    assert all(s > 0 for s in seconds.values())


def test_validations_from_several_threads_agree() -> None:
    broken = _changed(VAT_19, "<ram:BuyerReference>10046118-0001-83</ram:BuyerReference>", "")
    results: dict[int, bool] = {}

    def run(i: int) -> None:
        results[i] = validate(broken if i % 2 else VAT_19.read_bytes()).ok

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == {i: i % 2 == 0 for i in range(6)}


def test_missing_rules_name_the_command_that_fetches_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASISIT_CACHE", str(tmp_path))
    with pytest.raises(PrerequisiteMissing) as missing:
        validate(VAT_19.read_bytes())
    assert "bash scripts/xrechnung-rules.sh" in str(missing.value)
    assert RULES.key in str(missing.value)


def test_rules_of_other_versions_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "xrechnung" / RULES.key
    folder.mkdir(parents=True)
    (folder / ".basisit-complete").write_text("XRECHNUNG_VERSION=2.3.1\n", encoding="utf-8")
    monkeypatch.setenv("BASISIT_CACHE", str(tmp_path))
    with pytest.raises(PrerequisiteMissing) as other:
        rules_dir()
    assert "bash scripts/xrechnung-rules.sh --force" in str(other.value)


def _versions_env() -> dict[str, str]:
    pairs = (
        line.partition("=")[::2]
        for line in (paths.project_root() / "scripts" / "versions.env").read_text().splitlines()
        if line.startswith("XRECHNUNG_")
    )
    return dict(pairs)


def test_versions_env_pins_the_versions_the_code_expects() -> None:
    assert _versions_env() == RULES.as_env()
    assert (RULES.en16931, RULES.xrechnung, RULES.xrechnung_schematron) == (
        "1.3.16",
        "3.0.2",
        "2.5.0",
    )


def test_the_script_prints_the_directory_the_code_reads() -> None:
    # Cached by bootstrap: a re-run only finds the marker (about 10 ms).
    printed = subprocess.run(
        ["bash", str(paths.project_root() / "scripts" / "xrechnung-rules.sh")],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    assert Path(printed) == rules_dir() and Path(printed).name == RULES.key
