"""A deploy of nothing builds nothing: a Kommune that never joined, or one with no approved
service and no stack yet, is refused with a clear message and leaves nothing behind (before,
`basisit deploy --ags 10046115` printed "create 2" and left a stack, a network, ports and an SSH
key pair, exit 0). A Kommune whose stack must shrink to nothing still deploys."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from basisit.app import sources
from basisit.app.sources import Source
from basisit.cli.main import app
from basisit.requests import service as svc
from basisit.store.db import session_scope

NEVER = "10046115"  # Freisen: never onboarded in these tests


def _cli(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def _left_behind(data_dir: Path) -> list[str]:
    """What a refused deploy may not create: stack state, allocations, keys, outputs."""
    return sorted(
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.relative_to(data_dir).parts[0] in {"pulumi", "provision", "secrets", "outputs"}
    )


def test_desired_state_of_a_kommune_that_never_joined_says_so(database):
    result = _cli("desired-state", "--ags", NEVER, "--format", "json")
    assert result.exit_code == 5
    assert f"Kommune {NEVER} is not onboarded" in result.output
    assert "schema_version" not in result.output  # no empty document


@pytest.mark.parametrize("command", ["deploy", "plan"])
def test_deploy_of_a_kommune_that_never_joined_is_refused(database, data_dir, command):
    result = _cli(command, "--ags", NEVER, "--target", "local")
    assert result.exit_code == 5
    assert "is not onboarded" in result.output
    assert _left_behind(data_dir) == []


@pytest.mark.parametrize("command", ["deploy", "plan"])
def test_deploy_of_an_empty_desired_state_without_a_stack_is_refused(onboarded, data_dir, command):
    result = _cli(command, "--ags", onboarded, "--target", "local")
    assert result.exit_code == 5, result.output
    assert f"AGS {onboarded} has nothing to deploy" in result.output
    assert "approve a request first" in result.output
    assert _left_behind(data_dir) == []


def test_the_same_from_a_desired_state_file(onboarded, data_dir, tmp_path):
    document = _cli("desired-state", "--ags", onboarded, "--format", "json").output
    path = tmp_path / "empty.json"
    path.write_text(document, encoding="utf-8")
    assert json.loads(document)["services"] == []
    result = _cli("deploy", "--ags", onboarded, "--desired-state", str(path))
    assert result.exit_code == 5 and "nothing to deploy" in result.output
    assert _left_behind(data_dir) == []


def test_an_empty_desired_state_with_a_stack_still_deploys(onboarded, data_dir):
    """Its last services are being decommissioned: the stack must shrink, so no refusal."""
    empty = Source(None).desired(onboarded)
    assert sources.nothing_to_deploy(onboarded, empty) is not None
    # The file backend's record of the stack is what "has a stack" means.
    stack = data_dir / "pulumi" / "state" / ".pulumi" / "stacks" / "basisit" / f"{onboarded}.json"
    stack.parent.mkdir(parents=True)
    stack.write_text("{}", encoding="utf-8")
    assert sources.nothing_to_deploy(onboarded, empty) is None


def test_all_leaves_out_the_kommunen_with_nothing_to_deploy(catalog, onboarded):
    from basisit.leitweg import make as make_leitweg
    from basisit.requests import onboarding

    with session_scope() as s:
        onboarding.onboard(
            s, ags="10046111", contact_name="IT Nohfelden", contact_email="it@nohfelden.example",
            cost_centre="KST-1", billing_address="An der Burg 1, 66625 Nohfelden",
            leitweg_id=make_leitweg("10046111"), actor="test-operator",
        )  # fmt: skip
    with session_scope() as s:
        rid = svc.create(
            s, catalog, ags="10046111", service_id="dns", plan="zone", actor="kommune-it"
        ).id
    with session_scope() as s:
        svc.submit(s, catalog, [rid], "kommune-it", dt.date(2026, 11, 25))
    with session_scope() as s:
        svc.approve(s, svc.get(s, rid), "ops", "ops-1")

    chosen = sources.select(Source(None), None, True)
    assert chosen.kommunen == ["10046111"]
    assert chosen.idle == [onboarded]
