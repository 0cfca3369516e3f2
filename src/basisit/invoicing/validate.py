"""Offline validation of an XRechnung 3.0 CII invoice in four stages, as KoSIT's validator does:

1. ``xml``: the bytes are well-formed XML without a DOCTYPE,
2. ``xsd``: the UN/CEFACT CII D16B XSD (lxml),
3. ``en16931``: the CEN EN 16931 CII schematron, as XSLT 2.0 (saxonche),
4. ``xrechnung``: KoSIT's XRechnung CII schematron, as XSLT 2.0 (saxonche).

A stage that fails stops the ones after it only where their results would mean nothing: the
schematron stages assume a document of the schema, so a failed ``xml`` or ``xsd`` stage skips
them (and says so); the two schematron stages both run, so every business-rule finding is
reported at once. Fatal and error findings fail a stage; warnings and information are kept.

Compiling the two stylesheets takes a few tenths of a second, a transform a few milliseconds:
each rule file is compiled once per process and kept.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from basisit import paths
from basisit.errors import PrerequisiteMissing, ValidationFailed

FETCH = "bash scripts/xrechnung-rules.sh"


class RulesMissing(PrerequisiteMissing):
    """The cached rules are missing, of other versions or broken; `fix` is the command."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}: run `{fix}`")
        self.fix = fix


@dataclass(frozen=True)
class RuleVersions:
    """The three Maven Central jars and the rule sets inside them (scripts/versions.env pins
    the same; a test checks that they agree)."""

    cii_d16b: str  # com.helger.cii:ph-cii-d16b, the CII D16B XSD
    en16931_jar: str  # com.helger.phive.rules:phive-rules-en16931
    en16931: str  # the CEN EN 16931 schematron inside it
    xrechnung_jar: str  # com.helger.phive.rules:phive-rules-xrechnung
    xrechnung: str  # the XRechnung release inside it
    xrechnung_schematron: str  # and the version of its schematron

    @property
    def key(self) -> str:
        """The cache folder's name (scripts/xrechnung-rules.sh builds the same)."""
        return f"cii-d16b-{self.cii_d16b}_en16931-{self.en16931_jar}_xrechnung-{self.xrechnung_jar}"

    def as_env(self) -> dict[str, str]:
        """The names of scripts/versions.env, as the script writes them into its marker."""
        return {
            "XRECHNUNG_CII_D16B_VERSION": self.cii_d16b,
            "XRECHNUNG_EN16931_JAR_VERSION": self.en16931_jar,
            "XRECHNUNG_EN16931_RULES_VERSION": self.en16931,
            "XRECHNUNG_JAR_VERSION": self.xrechnung_jar,
            "XRECHNUNG_VERSION": self.xrechnung,
            "XRECHNUNG_SCHEMATRON_VERSION": self.xrechnung_schematron,
        }


RULES = RuleVersions(
    cii_d16b="4.1.1",
    en16931_jar="4.3.7",
    en16931="1.3.16",
    xrechnung_jar="4.2.3",
    xrechnung="3.0.2",
    xrechnung_schematron="2.5.0",
)
# What an invoice of ours declares as its specification identifier (BT-24).
SPECIFICATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"

Stage = Literal["xml", "xsd", "en16931", "xrechnung"]
STAGES: tuple[Stage, ...] = ("xml", "xsd", "en16931", "xrechnung")
Flag = Literal["fatal", "error", "warning", "information"]
_FLAGS: dict[str, Flag] = {
    "fatal": "fatal",
    "error": "error",
    "warning": "warning",
    "information": "information",
}
FAILING: frozenset[Flag] = frozenset({"fatal", "error"})

_SVRL = "{http://purl.oclc.org/dsdl/svrl}"


@dataclass(frozen=True)
class Finding:
    rule: str  # BR-DE-15, BR-CO-15; for xml and xsd lxml's error type, e.g. SCHEMAV_ELEMENT_CONTENT
    flag: Flag
    message: str
    location: str = ""  # XPath of the element the rule is about
    line: int | None = None  # only where the parser knows it (xml, xsd)

    @property
    def fails(self) -> bool:
        return self.flag in FAILING

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        where += f" (line {self.line})" if self.line else ""
        return f"{self.rule} [{self.flag}] {self.message}{where}"


@dataclass(frozen=True)
class StageResult:
    stage: Stage
    passed: bool
    findings: tuple[Finding, ...] = ()
    skipped: str = ""  # why the stage did not run; empty when it ran
    seconds: float = 0.0
    fired: int = 0  # schematron stages: how many rule contexts matched the invoice

    @property
    def rules(self) -> set[str]:
        """The rule ids of the failing findings."""
        return {f.rule for f in self.findings if f.fails}


@dataclass(frozen=True)
class Validation:
    stages: tuple[StageResult, ...]
    ok: bool = field(init=False)

    def __post_init__(self) -> None:
        # A field, not a property, so that dataclasses.asdict() and a JSON answer carry it.
        object.__setattr__(self, "ok", all(s.passed for s in self.stages))

    def stage(self, name: Stage) -> StageResult:
        return next(s for s in self.stages if s.stage == name)

    @property
    def failed_stage(self) -> Stage | None:
        return next((s.stage for s in self.stages if not s.passed and not s.skipped), None)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for s in self.stages for f in s.findings)

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.fails)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def problems(self) -> list[str]:
        """One line per failing finding and skipped stage, for an error message."""
        lines = [f"{s.stage}: {f}" for s in self.stages for f in s.findings if f.fails]
        return lines + [f"{s.stage}: {s.skipped}" for s in self.stages if s.skipped]


@dataclass(frozen=True)
class RuleFiles:
    xsd: Path
    en16931: Path
    xrechnung: Path


def rules_dir() -> Path:
    """The cached rules of RULES; RulesMissing (a PrerequisiteMissing, with the command) when
    they are not there or are of other versions."""
    folder = paths.cache_dir() / "xrechnung" / RULES.key
    marker = folder / ".basisit-complete"
    if not marker.is_file():
        raise RulesMissing(
            f"the XRechnung validation rules ({RULES.key}) are not in {folder} "
            "(scripts/bootstrap.sh fetches them)",
            FETCH,
        )
    recorded = dict(
        line.partition("=")[::2] for line in marker.read_text(encoding="utf-8").splitlines()
    )
    if recorded != RULES.as_env():
        raise RulesMissing(
            f"{marker} records other rule versions than basisit.invoicing.validate.RULES",
            f"{FETCH} --force",
        )
    return folder


def rule_files() -> RuleFiles:
    folder = rules_dir()
    return RuleFiles(
        xsd=folder / "xsd" / "CrossIndustryInvoice_100pD16B.xsd",
        en16931=folder / "en16931" / "EN16931-CII-validation.xslt",
        xrechnung=folder / "xrechnung" / "XRechnung-CII-validation.xslt",
    )


# lxml's schema keeps its error log on the object and saxonche's processor is one per process:
# one validation at a time (a few milliseconds) keeps both consistent across threads.
_LOCK = threading.RLock()
# How long each rule file took to compile, by stage; filled once per process.
COMPILE_SECONDS: dict[Stage, float] = {}


def _broken(path: Path, why: object) -> RulesMissing:
    return RulesMissing(f"{path} cannot be used ({why}); fetch it again", f"{FETCH} --force")


@cache
def _schema(path: Path) -> etree.XMLSchema:
    start = time.perf_counter()
    try:
        schema = etree.XMLSchema(etree.parse(str(path), _parser()))
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise _broken(path, exc) from None
    COMPILE_SECONDS["xsd"] = time.perf_counter() - start
    return schema


@cache
def _saxon() -> Any:  # saxonche ships no type information: PySaxonProcessor
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


@cache
def _stylesheet(stage: Stage, path: Path) -> Any:  # PyXsltExecutable
    from saxonche import PySaxonApiError

    if not path.is_file():
        raise _broken(path, "missing")
    start = time.perf_counter()
    try:
        executable = _saxon().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))
    except PySaxonApiError as exc:
        raise _broken(path, f"does not compile: {str(exc).strip()}") from None
    COMPILE_SECONDS[stage] = time.perf_counter() - start
    return executable


def compile_rules() -> dict[Stage, float]:
    """Compiles (once) the XSD and both stylesheets; the seconds each took. The doctor uses it,
    and a long-running process can call it at start so the first invoice does not wait."""
    files = rule_files()
    with _LOCK:
        _schema(files.xsd)
        _stylesheet("en16931", files.en16931)
        _stylesheet("xrechnung", files.xrechnung)
        return dict(COMPILE_SECONDS)


@cache
def _parser() -> etree.XMLParser:
    # An invoice may come from elsewhere: no DTD, no entities, no network.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _parse(xml: bytes) -> tuple[etree._ElementTree | None, tuple[Finding, ...]]:
    try:
        tree = etree.ElementTree(etree.fromstring(xml, _parser()))
    except etree.XMLSyntaxError as exc:
        # The first error is the cause; libxml2's later ones follow from it.
        line: int | None = exc.lineno
        rule, message = "XML_SYNTAX", str(exc.msg)
        if len(exc.error_log):
            entry = exc.error_log[0]
            rule, message, line = entry.type_name, entry.message, entry.line
        return None, (Finding(rule, "fatal", f"not well-formed XML: {message}", "", line),)
    if tree.docinfo.doctype:
        # Also what keeps saxon from resolving external entities of an invoice.
        return None, (Finding("XML_DOCTYPE", "fatal", "an invoice must not have a DOCTYPE"),)
    return tree, ()


def _xsd_findings(schema: etree.XMLSchema) -> tuple[Finding, ...]:
    return tuple(
        Finding(e.type_name, "fatal", e.message, e.path or "", e.line or None)
        for e in schema.error_log
    )


_PREFIXES = {
    "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100": "rsm",
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100": "ram",
    "urn:un:unece:uncefact:data:standard:QualifiedDataType:100": "qdt",
    "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100": "udt",
}
_STEP = re.compile(r"\*:([\w.-]+)\[namespace-uri\(\)='([^']*)'\]")


def _short_path(location: str) -> str:
    """The schematron's /*:X[namespace-uri()='urn:...:CrossIndustryInvoice:100'][1] steps as
    /rsm:X[1], the prefixes lxml's XSD errors use too; unknown namespaces stay as they are."""

    def step(match: re.Match[str]) -> str:
        prefix = _PREFIXES.get(match.group(2))
        return f"{prefix}:{match.group(1)}" if prefix else match.group(0)

    return _STEP.sub(step, location)


def _svrl_findings(svrl: str) -> tuple[tuple[Finding, ...], int]:
    """failed-assert and successful-report of an SVRL report, in document order, and the
    number of fired rules."""
    root = etree.fromstring(svrl.encode("utf-8"))
    fired = sum(1 for _ in root.iter(f"{_SVRL}fired-rule"))
    findings = []
    for element in root.iter(f"{_SVRL}failed-assert", f"{_SVRL}successful-report"):
        # Schematron's defaults: a failed assertion is an error, a report is information.
        default: Flag = "error" if element.tag == f"{_SVRL}failed-assert" else "information"
        # An unknown flag fails rather than lets an invoice through unread.
        flag = _FLAGS.get(element.get("flag") or default, "error")
        text = " ".join("".join(element.findtext(f"{_SVRL}text") or "").split())
        rule = element.get("id") or "?"
        findings.append(Finding(rule, flag, text, _short_path(element.get("location") or "")))
    return tuple(findings), fired


def _schematron(stage: Stage, path: Path, document: Any) -> StageResult:
    from saxonche import PySaxonApiError

    executable = _stylesheet(stage, path)
    # The stage's time is the transform's; a first call's compile is in COMPILE_SECONDS.
    start = time.perf_counter()
    fired = 0
    try:
        svrl = executable.transform_to_string(xdm_node=document)
    except PySaxonApiError as exc:
        # A dynamic error inside the rules: the invoice is not shown to be valid.
        message = f"the schematron could not check this invoice: {str(exc).strip()}"
        findings: tuple[Finding, ...] = (Finding("XSLT_ERROR", "fatal", message),)
    else:
        findings, fired = _svrl_findings(str(svrl))
        if not fired:
            # No rule context matched (another syntax or namespace): nothing was checked.
            message = "no rule of the schematron applied to this document: nothing was checked"
            findings = (*findings, Finding("NO_RULE_FIRED", "fatal", message))
    passed = not any(f.fails for f in findings)
    seconds = time.perf_counter() - start
    return StageResult(stage, passed, findings, seconds=seconds, fired=fired)


def _skip(stages: tuple[Stage, ...], why: str) -> list[StageResult]:
    return [StageResult(stage, False, skipped=why) for stage in stages]


def validate(xml: bytes) -> Validation:
    """Every stage's findings for one invoice; raises only for missing or broken rule files
    (RulesMissing), never for a broken invoice."""
    with _LOCK:
        return _validate(xml)


def _validate(xml: bytes) -> Validation:
    files = rule_files()  # first: a machine without the rules fails the same way for any input
    start = time.perf_counter()
    tree, problems = _parse(xml)
    results = [StageResult("xml", not problems, problems, seconds=time.perf_counter() - start)]
    if tree is None:
        return Validation(
            (*results, *_skip(STAGES[1:], "not run: the invoice failed the xml stage"))
        )

    schema = _schema(files.xsd)  # compiled before the clock starts, as the stylesheets are
    start = time.perf_counter()
    valid = schema.validate(tree)
    results.append(
        StageResult("xsd", valid, _xsd_findings(schema), seconds=time.perf_counter() - start)
    )
    if not valid:
        why = f"not run: the invoice does not pass the CII D16B XSD ({RULES.cii_d16b})"
        return Validation((*results, *_skip(STAGES[2:], why)))

    # The document was already parsed safely by lxml; saxon reads its serialization, once for
    # both stylesheets.
    document = _saxon().parse_xml(xml_text=etree.tostring(tree, encoding="unicode"))
    results.append(_schematron("en16931", files.en16931, document))
    results.append(_schematron("xrechnung", files.xrechnung, document))
    return Validation(tuple(results))


def require_valid(xml: bytes) -> Validation:
    """validate(), and ValidationFailed naming every failing rule when the invoice fails: what
    a writer calls before it writes the file."""
    result = validate(xml)
    if not result.ok:
        raise ValidationFailed(
            f"the invoice is not a valid XRechnung {RULES.xrechnung} (CII)", result.problems()
        )
    return result
