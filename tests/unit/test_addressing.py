"""The address rule: one /24 per Kommune, deterministic, collision-free, stable."""

from __future__ import annotations

import csv
import ipaddress
import itertools
from pathlib import Path

import pytest

from basisit import addressing

ROOT = Path(__file__).resolve().parents[2]
PODMAN_DEFAULTS = [ipaddress.IPv4Network("10.88.0.0/16"), ipaddress.IPv4Network("10.89.0.0/16")]


def _registry() -> list[str]:
    candidates = [
        ROOT / "inventories" / "kommunen.csv",
        ROOT.parent / "shared" / "data" / "saarland-kommunen.csv",
    ]
    for path in candidates:
        if path.is_file():
            rows = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln[:1] != "#"]
            return [row["ags"] for row in csv.DictReader(rows)]
    pytest.fail("no Kommunen registry found (inventories/kommunen.csv)")


ALL_AGS = _registry()


def test_registry_has_all_58_kommunen() -> None:
    assert len(ALL_AGS) == 58
    assert len(set(ALL_AGS)) == 58


def test_every_kommune_gets_its_own_24_inside_the_supernet() -> None:
    subnets = {ags: addressing.kommune_subnet(ags) for ags in ALL_AGS}
    assert all(net.prefixlen == 24 for net in subnets.values())
    assert all(net.subnet_of(addressing.SUPERNET) for net in subnets.values())
    nets = sorted(subnets.values())
    for a, b in itertools.pairwise(nets):
        assert not a.overlaps(b), f"{a} overlaps {b}"
    for net in nets:
        for default in PODMAN_DEFAULTS:
            assert not net.overlaps(default)


def test_rule_matches_the_documented_formula() -> None:
    # Tholey: Kreis 046 -> k = 6, Gemeinde 118 -> 10.(24 + 0).118.0/24
    assert str(addressing.kommune_subnet("10046118")) == "10.24.118.0/24"
    assert str(addressing.gateway("10046118")) == "10.24.118.1"
    # Saarbrücken 10041100: k = 1, g = 100
    assert str(addressing.kommune_subnet("10041100")) == "10.4.100.0/24"
    # A Kreis takes its block's first /24
    assert str(addressing.kommune_subnet("10046")) == "10.24.0.0/24"
    # Gemeinde numbers above 255 move to the next /16 of the block
    assert str(addressing.kommune_subnet("10041519")) == "10.6.7.0/24"


def test_deterministic() -> None:
    first = [addressing.kommune_subnet(a) for a in ALL_AGS]
    again = [addressing.kommune_subnet(a) for a in reversed(ALL_AGS)]
    assert first == list(reversed(again))


def test_adding_a_kommune_moves_no_other() -> None:
    before = {ags: addressing.kommune_subnet(ags) for ags in ALL_AGS}
    # e.g. a merger creates a new Gemeinde number in Kreis Saarlouis, or Kreis 047 appears
    newcomers = ["10044124", "10042999", "10047100", "10047"]
    after = {ags: addressing.kommune_subnet(ags) for ags in [*ALL_AGS, *newcomers]}
    assert all(after[ags] == before[ags] for ags in ALL_AGS)
    assert len(set(after.values())) == len(after)


def test_whole_ags_space_is_collision_free() -> None:
    """Every AGS the rule accepts (15 Kreise x 1000 numbers) maps to a distinct /24."""
    seen: set[int] = set()
    for kreis in range(41, 56):
        for g in ["", *(f"{n:03d}" for n in range(1000))]:
            if g == "000":
                continue  # not an AGS: a Gemeinde number 000 would be the Kreis itself
            index = addressing.kommune_index(f"10{kreis:03d}{g}")
            assert index not in seen
            seen.add(index)
    assert max(seen) * 256 < addressing.SUPERNET.num_addresses


@pytest.mark.parametrize(
    ("ags", "message"),
    [
        ("1004611", "3 digits"),
        ("20046118", "3 digits"),
        ("10040118", "outside 041..055"),
        ("10056", "outside 041..055"),
        ("abc", "3 digits"),
    ],
)
def test_bad_ags_is_refused_with_a_clear_message(ags: str, message: str) -> None:
    with pytest.raises(addressing.AddressError, match=message):
        addressing.kommune_subnet(ags)


def test_host_numbers_are_kept_and_new_servers_take_the_lowest_free() -> None:
    first = addressing.assign_hosts(["dns", "dateiablage", "sicherung"], {})
    assert first == {"dns": 10, "dateiablage": 11, "sicherung": 12}
    # dateiablage removed, web added: dns and sicherung keep theirs; dateiablage's number
    # stays reserved (its container may still be going away) so web gets 13
    second = addressing.assign_hosts(["dns", "sicherung", "web"], first)
    assert second == {"dns": 10, "sicherung": 12, "web": 13}


def test_host_addresses_stay_inside_the_kommune_subnet() -> None:
    net = addressing.kommune_subnet("10046118")
    for host in (addressing.FIRST_SERVER_HOST, addressing.LAST_SERVER_HOST):
        assert addressing.host_address("10046118", host) in net
    with pytest.raises(addressing.AddressError):
        addressing.host_address("10046118", 1)
    with pytest.raises(addressing.AddressError, match="no free host number"):
        names = [f"s{i}" for i in range(addressing.LAST_SERVER_HOST - 8)]
        addressing.assign_hosts(names, {})
