"""The registry of the 58 Kommunen and onboarding."""

from __future__ import annotations

from typer.testing import CliRunner

from basisit import kommunen, leitweg
from basisit.cli.main import app


def test_registry_has_all_58_with_official_totals():
    all_k = kommunen.all_kommunen()
    assert len(all_k) == 58
    by_type = {t: [k for k in all_k if k.typ == t] for t in kommunen.TYPES}
    assert len(by_type["Stadt"]) + len(by_type["Gemeinde"]) == 52
    assert len(by_type["Landkreis"]) == 5 and len(by_type["Regionalverband"]) == 1
    gemeinden = [k for k in all_k if not k.is_kreis]
    assert sum(k.einwohner for k in gemeinden) == 992_666
    for kreis in [k for k in all_k if k.is_kreis]:
        members = [g for g in gemeinden if g.kreis_schluessel == kreis.ags]
        assert sum(g.einwohner for g in members) == kreis.einwohner


def test_registry_keeps_its_source_line():
    first = kommunen.registry_file().read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# Quelle: Statistisches Bundesamt (Destatis)")


def test_slugs_are_unique_dns_labels():
    slugs = [k.slug for k in kommunen.all_kommunen()]
    assert len(set(slugs)) == 58
    assert kommunen.get("10041100").slug == "saarbruecken"
    assert kommunen.get("10044119").slug == "ueberherrn"
    assert kommunen.get("10046").slug == "kreis-st-wendel"


def test_unknown_ags_names_the_problem():
    runner = CliRunner()
    result = runner.invoke(app, ["kommunen", "show", "10099999"])
    assert result.exit_code == 3
    assert "unknown AGS '10099999'" in result.output
    result = runner.invoke(app, ["kommunen", "show", "4711"])
    assert "8 digits" in result.output


def test_list_filters_by_kreis_and_onboarding(database):
    runner = CliRunner()
    result = runner.invoke(app, ["kommunen", "list", "--kreis", "St. Wendel", "--format", "json"])
    assert result.exit_code == 0
    assert result.output.count('"ags"') == 9  # 8 Gemeinden + the Landkreis
    ok = runner.invoke(
        app,
        [
            "kommunen", "onboard", "10046118", "--contact-name", "Anna Muster",
            "--contact-email", "it@tholey.de", "--cost-centre", "KST-4711",
            "--billing-address", "Im Kloster 1, 66636 Tholey",
            "--leitweg-id", leitweg.make("10046118"),
        ],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    onboarded = runner.invoke(app, ["kommunen", "list", "--onboarded", "--format", "json"])
    assert onboarded.output.count('"ags"') == 1 and "10046118" in onboarded.output
    rest = runner.invoke(app, ["kommunen", "list", "--not-onboarded", "--format", "json"])
    assert rest.output.count('"ags"') == 57


def test_onboarding_rejects_bad_data_and_stores_nothing(database):
    runner = CliRunner()
    bad = runner.invoke(
        app,
        [
            "kommunen", "onboard", "10046118", "--contact-name", "Anna",
            "--contact-email", "not-an-address", "--cost-centre", "KST",
            "--billing-address", "x", "--leitweg-id", "10046118-00",
        ],
    )  # fmt: skip
    assert bad.exit_code == 4
    assert "not-an-address" in bad.output and "check digits 00" in bad.output
    assert "billing address" in bad.output
    shown = runner.invoke(app, ["kommunen", "show", "10046118", "--format", "json"])
    assert '"onboarded": false' in shown.output


def test_leitweg_check_digits_follow_iso_7064():
    # Published examples of valid Leitweg-IDs
    assert leitweg.problem("04011000-1234512345-06") is None
    assert leitweg.problem("991-33333TEST-33") is None
    assert "expected 06" in leitweg.problem("04011000-1234512345-07")
    assert "not of the form" in leitweg.problem("DE-123")


def _onboard_args(ags: str, **over: str) -> list[str]:
    values = {
        "--contact-name": "Anna Muster", "--contact-email": "it@tholey.de",
        "--cost-centre": "KST-4711", "--billing-address": "Im Kloster 1, 66636 Tholey",
        "--leitweg-id": leitweg.make("10046118"), **over,
    }  # fmt: skip
    return ["kommunen", "onboard", ags, *[x for kv in values.items() for x in kv]]


def test_padded_ags_is_stored_as_the_registry_spells_it(database):
    runner = CliRunner()
    ok = runner.invoke(app, _onboard_args(" 10046118 "))
    assert ok.exit_code == 0, ok.output
    shown = runner.invoke(app, ["kommunen", "show", "10046118", "--format", "json"])
    assert '"onboarded": true' in shown.output
    created = runner.invoke(
        app, ["request", "create", "--ags", "10046118 ", "--service", "dns", "--plan", "zone"]
    )
    assert created.exit_code == 0, created.output
    listed = runner.invoke(app, ["request", "list", "--ags", "10046118", "--format", "json"])
    assert '"ags": "10046118"' in listed.output
    off = runner.invoke(app, ["kommunen", "offboard", " 10046118"])
    assert off.exit_code == 5 and "open requests (dns)" in off.output


def test_onboarding_twice_and_offboarding_a_stranger_are_not_allowed(database):
    runner = CliRunner()
    assert runner.invoke(app, _onboard_args("10046118")).exit_code == 0
    again = runner.invoke(app, _onboard_args("10046118"))
    assert again.exit_code == 5 and "already onboarded" in again.output, again.output
    stranger = runner.invoke(app, ["kommunen", "offboard", "10041100"])
    assert stranger.exit_code == 5 and "is not onboarded" in stranger.output, stranger.output


def test_too_long_onboarding_fields_are_refused_on_both_databases(database):
    runner = CliRunner()
    bad = runner.invoke(
        app, _onboard_args("10046118", **{"--contact-name": "ä" * 201, "--cost-centre": "1" * 51})
    )
    assert bad.exit_code == 4, bad.output
    assert "contact name is longer than 200" in bad.output
    assert "cost centre is longer than 50" in bad.output
    long_actor = runner.invoke(app, [*_onboard_args("10046118"), "--actor", "x" * 101])
    assert long_actor.exit_code == 4 and "actor name is longer than 100" in long_actor.output
    shown = runner.invoke(app, ["kommunen", "show", "10046118", "--format", "json"])
    assert '"onboarded": false' in shown.output


def test_unknown_kreis_is_an_error_with_any_filter(database):
    result = CliRunner().invoke(app, ["kommunen", "list", "--kreis", "Mars", "--onboarded"])
    assert result.exit_code == 3 and "unknown Kreis 'Mars'" in result.output
