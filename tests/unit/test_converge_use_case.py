"""converge of several Kommunen in turn (app.converge): one that cannot converge is reported
and the others go on; a single Kommune's error is raised."""

from __future__ import annotations

from typing import Any

import pytest

from basisit.app import converge
from basisit.configure.connection import Mode
from basisit.errors import BasisItError


def test_in_turn_goes_on_after_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def one(ags: str, **_: Any) -> converge.ConvergeResult:
        if ags == "10041100":
            raise BasisItError("deploy of AGS 10041100 failed: no space left")
        return converge.ConvergeResult(ags, ok=True)

    monkeypatch.setattr(converge, "converge_one", one)
    reported: list[tuple[str, str, str]] = []
    options: dict[str, Any] = {"actor": "t", "target": "local", "desired_state": None}
    results = converge.converge_in_turn(
        ["10041100", "10046118"], mode=Mode.fast, report=lambda *a: reported.append(a), **options
    )
    assert [r.to_dict() for r in results] == [
        {"ags": "10041100", "ok": False, "error": "deploy of AGS 10041100 failed: no space left"},
        {"ags": "10046118", "ok": True, "error": None},
    ]
    assert reported == [("10041100", "failed", results[0].error)]
    with pytest.raises(BasisItError, match="no space left"):
        converge.converge_in_turn(["10041100"], mode=Mode.fast, **options)
