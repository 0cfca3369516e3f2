"""Requests on both databases: checks, pricing, approvals, transitions, audit, atomicity."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from basisit.errors import BasisItError, Conflict, NotFound, TransitionNotAllowed, ValidationFailed
from basisit.requests import lifecycle
from basisit.requests import service as svc
from basisit.requests import workflow as wf
from basisit.store.db import session_scope
from basisit.store.models import AuditEvent, Request

TODAY = dt.date(2026, 11, 25)


def _create(catalog, ags, service, plan, **kw):
    with session_scope() as s:
        return svc.create(
            s, catalog, ags=ags, service_id=service, plan=plan, actor="kommune-it", **kw
        ).id


def _submit(catalog, *ids):
    with session_scope() as s:
        return [(r.id, q) for r, q in svc.submit(s, catalog, list(ids), "kommune-it", TODAY)]


def _approve(rid, role="ops", actor="ops-1"):
    with session_scope() as s:
        return svc.approve(s, svc.get(s, rid), role, actor).state


def _state(rid):
    with session_scope() as s:
        return svc.get(s, rid).state


def _snapshot():
    with session_scope() as s:
        rows = s.scalars(select(Request).order_by(Request.id)).all()
        audit = s.scalar(select(func.count()).select_from(AuditEvent))
        return [(r.id, r.state, r.monthly_eur, dict(r.parameters)) for r in rows], audit


def test_request_before_onboarding_is_refused(catalog, database):
    with pytest.raises(BasisItError, match="not onboarded"):
        _create(catalog, "10041100", "dns", "zone")
    with pytest.raises(NotFound, match="unknown AGS '10099999'"):
        _create(catalog, "10099999", "dns", "zone")


def test_unknown_service_plan_and_parameters(catalog, onboarded):
    with pytest.raises(NotFound, match="unknown service 'fax'"):
        _create(catalog, onboarded, "fax", "S")
    with pytest.raises(NotFound, match=r"no plan 'XL'.*plans: S, M"):
        _create(catalog, onboarded, "fileshare", "XL")
    with pytest.raises(ValidationFailed) as exc:
        _create(catalog, onboarded, "fileshare", "S", parameters={"quota_gib": "500", "x": "1"})
    text = str(exc.value)
    assert "quota_gib: 500 is above the maximum 100 of this plan" in text
    assert "x: unknown parameter" in text
    with pytest.raises(ValidationFailed, match="not a whole number"):
        _create(catalog, onboarded, "fileshare", "S", parameters={"quota_gib": "viel"})
    with pytest.raises(BasisItError, match="cannot be requested"):
        _create(catalog, onboarded, "monitoring", "server")
    assert _snapshot() == ([], 1)  # only the onboarding event


def test_submit_prices_with_the_month_price_and_monitoring_per_server(catalog, onboarded):
    rid = _create(catalog, onboarded, "fileshare", "S", parameters={"quota_gib": "40"})
    ((_, quote),) = _submit(catalog, rid)
    # 20.00 base + 40 GiB x 0.05 + 4.00 monitoring for the server
    assert quote.monthly == Decimal("26.00")
    assert quote.one_time == Decimal("50.00")
    with session_scope() as s:
        req = svc.get(s, rid)
        assert req.state == wf.SUBMITTED and req.monthly_eur == Decimal("26.00")
        assert not req.needs_finance
        assert req.parameters == {"quota_gib": 40, "shares": ["verwaltung"]}


def test_dependency_must_be_present_or_requested_together(catalog, onboarded):
    web = _create(catalog, onboarded, "webhosting", "S")
    before = _snapshot()
    with pytest.raises(ValidationFailed, match="webhosting needs a dns service"):
        _submit(catalog, web)
    assert _snapshot() == before  # nothing half-submitted
    dns = _create(catalog, onboarded, "dns", "zone")
    _submit(catalog, web, dns)
    assert _state(web) == _state(dns) == wf.SUBMITTED


def test_schutzbedarf_rule_needs_backup_and_strong_dependencies(catalog, onboarded):
    db = _create(catalog, onboarded, "database", "S")  # offered only at hoch and above
    with pytest.raises(ValidationFailed, match="needs a backup service at 'hoch'"):
        _submit(catalog, db)
    weak = _create(catalog, onboarded, "backup", "S")  # normal by default
    with pytest.raises(ValidationFailed, match="backup is 'normal'"):
        _submit(catalog, db, weak)
    with session_scope() as s:
        svc.withdraw(s, svc.get(s, weak), "kommune-it", "too weak")
    strong = _create(catalog, onboarded, "backup", "S", instance="sicherung", schutzbedarf="hoch")
    _submit(catalog, db, strong)
    # webhosting at hoch needs dns at hoch
    dns = _create(catalog, onboarded, "dns", "zone")
    web = _create(catalog, onboarded, "webhosting", "S", schutzbedarf="hoch")
    with pytest.raises(
        ValidationFailed, match="needs dns at 'hoch' or higher, but dns is 'normal'"
    ):
        _submit(catalog, dns, web)
    with pytest.raises(ValidationFailed, match="not offered for database"):
        bad = _create(catalog, onboarded, "database", "S", instance="db2", schutzbedarf="normal")
        _submit(catalog, bad)


def test_finance_approval_above_threshold_and_four_eyes(catalog, onboarded):
    small = _create(catalog, onboarded, "virtual-server", "SCS-8V-16-100s")
    dns = _create(catalog, onboarded, "dns", "zone")
    boxes = ",".join(f"person{i}" for i in range(200))
    mail = _create(catalog, onboarded, "mail", "M", parameters={"mailboxes": boxes})
    _submit(catalog, small, dns, mail)
    with session_scope() as s:
        assert svc.get(s, small).monthly_eur == Decimal("136.00")  # below its 300 EUR threshold
        assert not svc.get(s, small).needs_finance
        big = svc.get(s, mail)
        # 20.00 base + 200 mailboxes x 2.00 + 4.00 monitoring, above mail's 300 EUR threshold
        assert big.needs_finance and big.monthly_eur == Decimal("424.00")
    assert _approve(mail, "ops", "ops-1") == wf.SUBMITTED
    with pytest.raises(BasisItError, match="needs another person"):
        _approve(mail, "finance", "ops-1")
    assert _approve(mail, "finance", "fin-1") == wf.APPROVED
    with pytest.raises(BasisItError, match="does not need finance approval"):
        _approve(small, "finance", "fin-1")


def test_transitions_not_allowed_are_refused_and_audited_ones_recorded(catalog, onboarded):
    rid = _create(catalog, onboarded, "dns", "zone")
    with pytest.raises(TransitionNotAllowed, match="only submitted ones are approved"):
        _approve(rid)
    _submit(catalog, rid)
    with session_scope() as s, pytest.raises(TransitionNotAllowed, match="cannot become active"):
        wf.move(s, svc.get(s, rid), wf.ACTIVE, "someone")
    _approve(rid)
    with session_scope() as s, pytest.raises(TransitionNotAllowed, match="not by hand"):
        wf.move(s, svc.get(s, rid), wf.PROVISIONING, "someone")
    with session_scope() as s, pytest.raises(TransitionNotAllowed, match="cannot become withdrawn"):
        svc.withdraw(s, svc.get(s, rid), "kommune-it", None)
    with session_scope() as s:
        trail = [(e.action, e.from_state, e.to_state) for e in svc.audit_trail(s, rid)]
    assert trail == [
        ("create", None, "draft"),
        ("transition", "draft", "submitted"),
        ("approval:ops", None, "submitted"),
        ("transition", "submitted", "approved"),
    ]


def test_lifecycle_through_deploy_configure_and_decommission(catalog, onboarded):
    dns = _create(catalog, onboarded, "dns", "zone")
    web = _create(catalog, onboarded, "webhosting", "S")
    _submit(catalog, dns, web)
    _approve(dns)
    _approve(web)
    moved = lifecycle.start_provisioning(onboarded, "deploy")
    assert moved == [dns, web]
    lifecycle.finish_provisioning(onboarded, moved, "deploy", error="podman: no space left")
    assert _state(dns) == wf.FAILED
    with session_scope() as s:
        assert svc.get(s, dns).error == "podman: no space left"
    moved = lifecycle.start_provisioning(onboarded, "deploy")  # retry
    lifecycle.finish_provisioning(onboarded, moved, "deploy", error=None)
    assert _state(dns) == wf.CONFIGURING
    lifecycle.finish_configuring(onboarded, {dns: None, web: "nginx: config test failed"}, "cfg")
    assert (_state(dns), _state(web)) == (wf.ACTIVE, wf.FAILED)
    # Decommissioning dns alone would strand the web site
    with session_scope() as s:
        dec = svc.decommission(
            s, catalog, ags=onboarded, instance="dns", actor="kommune-it", reason=None
        ).id
    with pytest.raises(ValidationFailed, match=r"webhosting .* needs a dns"):
        _submit(catalog, dec)
    with session_scope() as s:
        dec_web = svc.decommission(
            s, catalog, ags=onboarded, instance="webhosting", actor="kommune-it", reason=None
        ).id
    _submit(catalog, dec, dec_web)
    _approve(dec)
    _approve(dec_web)
    moved = lifecycle.start_provisioning(onboarded, "deploy")
    assert _state(dec) == wf.DECOMMISSIONING
    lifecycle.finish_provisioning(onboarded, moved, "deploy", error=None)
    assert _state(dec) == _state(dec_web) == wf.DECOMMISSIONED
    with session_scope() as s:
        assert svc.present_instances(s, onboarded) == {}


def test_change_request_replaces_plan_in_effect(catalog, onboarded):
    rid = _create(catalog, onboarded, "fileshare", "S", parameters={"quota_gib": "10"})
    _submit(catalog, rid)
    _approve(rid)
    with session_scope() as s, pytest.raises(BasisItError, match="use a change request"):
        svc.create(s, catalog, ags=onboarded, service_id="fileshare", plan="S",
                   instance="fileshare", actor="x")  # fmt: skip
    with session_scope() as s:
        cid = svc.change(
            s, catalog, ags=onboarded, instance="fileshare", plan="M",
            parameters={"quota_gib": "300"}, actor="kommune-it",
        ).id  # fmt: skip
    with session_scope() as s:
        present = svc.present_instances(s, onboarded)["fileshare"]
        assert present.request.plan == "S"  # a draft change changes nothing yet
    _submit(catalog, cid)
    _approve(cid)
    with session_scope() as s:
        present = svc.present_instances(s, onboarded)["fileshare"]
        assert (present.request.plan, present.request.parameters["quota_gib"]) == ("M", 300)


def test_racing_approvals_only_one_lands(catalog, onboarded):
    rid = _create(catalog, onboarded, "dns", "zone")
    _submit(catalog, rid)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def approver(name: str) -> None:
        try:
            with session_scope() as s:
                req = svc.get(s, rid)
                barrier.wait(timeout=10)
                svc.approve(s, req, "ops", name)
            results.append("ok")
        except (Conflict, BasisItError) as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=approver, args=(f"ops-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["Conflict", "ok"]
    with session_scope() as s:
        req = svc.get(s, rid)
        assert req.state == wf.APPROVED and len(req.approvals) == 1
        approvals = [e for e in svc.audit_trail(s, rid) if e.action.startswith("approval")]
        assert len(approvals) == 1


def test_sequential_stale_approval_is_a_conflict(catalog, onboarded):
    rid = _create(catalog, onboarded, "dns", "zone")
    _submit(catalog, rid)
    with session_scope() as first:
        stale = svc.get(first, rid)
        _approve(rid, "ops", "ops-2")  # someone else, in between
        with pytest.raises((Conflict, BasisItError, TransitionNotAllowed)):
            svc.approve(first, stale, "ops", "ops-1")
            first.flush()
    assert _state(rid) == wf.APPROVED


def test_a_dependency_submitted_together_cannot_be_dropped_alone(catalog, onboarded):
    dns = _create(catalog, onboarded, "dns", "zone")
    web = _create(catalog, onboarded, "webhosting", "S")
    _submit(catalog, dns, web)
    before = _snapshot()
    with session_scope() as s, pytest.raises(ValidationFailed, match="webhosting needs a dns"):
        svc.reject(s, svc.get(s, dns), "ops-1", "zu teuer", catalog)
    with session_scope() as s, pytest.raises(ValidationFailed, match="cannot be withdrawn"):
        svc.withdraw(s, svc.get(s, dns), "kommune-it", None, catalog)
    with session_scope() as s, pytest.raises(ValidationFailed) as err:
        svc.withdraw(s, svc.get(s, dns), "kommune-it", None, catalog)
    assert "\n  - then webhosting: webhosting needs a dns service" in str(err.value)
    assert _snapshot() == before
    _approve(web)  # dns is still on its way, so this is fine ...
    with session_scope() as s, pytest.raises(ValidationFailed, match="webhosting needs a dns"):
        svc.reject(s, svc.get(s, dns), "ops-1", "zu teuer", catalog)  # ... but now dns must stay
    assert _state(dns) == wf.SUBMITTED
    # Both together may go.
    other_dns = _create(catalog, onboarded, "dns", "zone", instance="zone2")
    other_web = _create(catalog, onboarded, "webhosting", "S", instance="web2")
    _submit(catalog, other_dns, other_web)
    with session_scope() as s:
        svc.reject(s, svc.get(s, other_web), "ops-1", "nicht nötig", catalog)
        svc.reject(s, svc.get(s, other_dns), "ops-1", "nicht nötig", catalog)
    assert _state(other_dns) == _state(other_web) == wf.REJECTED


def test_approval_rechecks_dependencies(catalog, onboarded):
    dns = _create(catalog, onboarded, "dns", "zone")
    web = _create(catalog, onboarded, "webhosting", "S")
    _submit(catalog, dns, web)
    with session_scope() as s:  # as an older version without the reject guard left it
        svc.get(s, dns).state = wf.REJECTED
    before = _snapshot()
    with pytest.raises(ValidationFailed, match="cannot be approved now"):
        _approve(web)
    assert _snapshot() == before


def test_change_must_not_weaken_what_others_rely_on(catalog, onboarded):
    db = _create(catalog, onboarded, "database", "S")
    backup = _create(catalog, onboarded, "backup", "S", schutzbedarf="hoch")
    _submit(catalog, db, backup)
    _approve(db)
    _approve(backup)
    with session_scope() as s:
        weaker = svc.change(
            s, catalog, ags=onboarded, instance="backup", schutzbedarf="normal", actor="x"
        ).id
    before = _snapshot()
    with pytest.raises(
        ValidationFailed, match=r"then database: .*needs a backup service at 'hoch'"
    ):
        _submit(catalog, weaker)
    assert _snapshot() == before
    with session_scope() as s, pytest.raises(ValidationFailed, match="'ultra' is not offered"):
        svc.change(s, catalog, ags=onboarded, instance="database", schutzbedarf="ultra", actor="x")


def test_odd_ids_and_names_give_clear_errors(catalog, onboarded):
    rid = _create(catalog, onboarded, "dns", "zone")
    before = _snapshot()
    with pytest.raises(BasisItError, match="request 1 given more than once"):
        _submit(catalog, rid, rid)
    for bad in (0, -1, 2**31, 10**21):
        with session_scope() as s, pytest.raises(NotFound, match=f"no request {bad}"):
            svc.get(s, bad)
    with pytest.raises(ValidationFailed, match="actor name is longer than 100"):
        svc.actor_name("x" * 101)
    assert _snapshot() == before


def test_cli_refuses_duplicate_params_and_unknown_states(catalog, onboarded):
    from typer.testing import CliRunner

    from basisit.cli.main import app

    runner = CliRunner()
    args = ["request", "create", "--ags", onboarded, "--service", "fileshare", "--plan", "S"]
    twice = runner.invoke(app, [*args, "-p", "quota_gib=10", "-p", "quota_gib=20"])
    assert twice.exit_code == 4 and "'quota_gib' is given more than once" in twice.output
    state = runner.invoke(app, ["request", "list", "--state", "bogus"])
    assert state.exit_code == 4 and "unknown state 'bogus'" in state.output
    for bad in (["-p", "quota_gib"], ["-p", "quota_gib=10", "-p", "=x"]):
        no_name = runner.invoke(app, [*args, *bad])
        assert no_name.exit_code == 4 and "not of the form name=value" in no_name.output
    change = ["request", "change", "--ags", onboarded, "--instance", "fileshare", "-p", "x"]
    changed = runner.invoke(app, change)
    assert changed.exit_code == 4 and "not of the form name=value" in changed.output
    huge = runner.invoke(app, ["request", "show", str(10**21)])
    assert huge.exit_code == 3 and "no request" in huge.output
    assert _snapshot() == ([], 1)


def test_cli_exit_codes_of_approvals_not_allowed_and_invalid(catalog, onboarded):
    from typer.testing import CliRunner

    from basisit.cli.main import app

    runner = CliRunner()
    dns = _create(catalog, onboarded, "dns", "zone")
    boxes = ",".join(f"person{i}" for i in range(200))
    mail = _create(catalog, onboarded, "mail", "M", parameters={"mailboxes": boxes})
    _submit(catalog, dns, mail)

    def approve(rid: int, *extra: str):
        return runner.invoke(app, ["request", "approve", str(rid), *extra])

    assert approve(mail, "--as", "ops", "--actor", "ops-1").exit_code == 0
    again = approve(mail, "--as", "ops", "--actor", "ops-2")
    assert again.exit_code == 5 and "already has the ops approval" in again.output
    same = approve(mail, "--as", "finance", "--actor", "ops-1")
    assert same.exit_code == 5 and "needs another person" in same.output
    needless = approve(dns, "--as", "finance", "--actor", "fin-1")
    assert needless.exit_code == 5 and "does not need finance approval" in needless.output
    role = approve(dns, "--as", "boss")
    assert role.exit_code in (2, 4) and ("boss" in role.output), role.output
    twice = runner.invoke(app, ["request", "submit", str(dns), str(dns)])
    assert twice.exit_code == 4 and "given more than once" in twice.output
    reason = runner.invoke(app, ["request", "reject", str(dns), "--reason", " "])
    assert reason.exit_code == 4 and "needs a reason" in reason.output, reason.output
