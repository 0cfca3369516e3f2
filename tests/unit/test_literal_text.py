"""What users typed is shown literally: never read as Rich markup, never sent to the terminal
as control sequences (a reason `Freigabe fehlt [/srv/samba]` crashed `request show`, `[bold]`
restyled it, `\\x1b]0;...` changed the terminal's title)."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from basisit.cli.main import app
from basisit.leitweg import make as make_leitweg
from basisit.requests import onboarding
from basisit.requests import service as svc
from basisit.store.db import session_scope
from basisit.text import literal

BRACKETS = "Freigabe fehlt [/srv/samba]"
STYLE = "[bold]wichtig[/bold] und [/]"
TERMINAL = "\x1b]0;pwned\x07\x1b[31mrot\x1b[0m\x08\u202eabc"


def _cli(*args: str):
    # A wide terminal-less run; COLUMNS keeps Rich from wrapping the reasons.
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def _rejected(catalog, ags: str, reason: str, comment: str | None = None) -> int:
    with session_scope() as s:
        rid = svc.create(s, catalog, ags=ags, service_id="dns", plan="zone", actor="kommune-it").id
    with session_scope() as s:
        svc.submit(s, catalog, [rid], "kommune-it", dt.date(2026, 11, 25))
    with session_scope() as s:
        svc.reject(s, svc.get(s, rid), "ops-1", reason)
    return rid


def _no_control(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output and "\x08" not in output
    assert "\u202e" not in output


@pytest.mark.parametrize(
    "reason", [BRACKETS, STYLE, TERMINAL], ids=["brackets", "style", "escapes"]
)
def test_request_show_prints_the_rejection_reason_literally(catalog, onboarded, reason):
    rid = _rejected(catalog, onboarded, reason)
    result = _cli("request", "show", str(rid))
    assert result.exit_code == 0, result.output
    _no_control(result.output)
    assert literal(reason) in result.output


def test_literal_shows_each_control_character_as_an_escape():
    assert literal(TERMINAL) == ("\\x1b]0;pwned\\x07\\x1b[31mrot\\x1b[0m\\x08\\u202eabc")
    assert literal("Tab\tand\nnewline stay, [brackets] too") == (
        "Tab\tand\nnewline stay, [brackets] too"
    )
    assert literal("\x9b31m") == "\\x9b31m"  # C1 CSI, one byte in 8-bit terminals
    assert literal(None) == ""


def test_kommunen_show_prints_a_contact_name_with_markup_literally(database):
    with session_scope() as s:
        onboarding.onboard(
            s, ags="10046118", contact_name="Anna [/] [bold]Muster[/bold]",
            contact_email="it@tholey.de", cost_centre="KST-[4711]\x1b[2J",
            billing_address="Im Kloster 1, 66636 Tholey",
            leitweg_id=make_leitweg("10046118"), actor="test-operator",
        )  # fmt: skip
    result = _cli("kommunen", "show", "10046118")
    assert result.exit_code == 0, result.output
    _no_control(result.output)
    assert "Anna [/] [bold]Muster[/bold]" in result.output
    assert "KST-[4711]\\x1b[2J" in result.output


def test_an_error_message_quoting_typed_text_is_literal(onboarded):
    result = _cli(
        "request", "create", "--ags", onboarded, "--service", "dns", "--plan", "zone",
        "-p", "[bold]x\x1b[31m",
    )  # fmt: skip
    assert result.exit_code != 0
    _no_control(result.output)
    assert "[bold]x\\x1b[31m" in result.output
