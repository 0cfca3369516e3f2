"""The address rule: every Kommune gets its own /24 inside 10.0.0.0/10.

An AGS is "10" (Saarland) + a three-digit Kreis (041..046) + for a Gemeinde a three-digit
number (100..519 today). The Kreis selects a block of 1024 /24s, the Gemeinde number a /24
inside it, and a Kreis itself takes the block's first /24:

    k = int(ags[2:5]) - 40            Kreis 041..046 -> 1..6 (room for up to 055 -> 15)
    g = int(ags[5:8]), 0 for a Kreis  0..999
    index = k * 1024 + g
    subnet = 10.0.0.0 + index * 256, prefix /24   i.e. 10.(4k + g // 256).(g % 256).0/24

The mapping is injective (g < 1024), depends on nothing but the AGS (a Kommune added later
never moves another), and stays inside 10.4.0.0 .. 10.63.255.255, so it never touches
podman's defaults (10.88.0.0/16, 10.89.x) nor 10.0.0.0/14's first block (k = 0 is unused).

Inside a Kommune's /24: .1 is the gateway, servers get .10 .. .250 (host numbers are
allocated once per server and kept, see basisit.provision.allocation).
"""

from __future__ import annotations

import ipaddress

from basisit.kommunen import AGS_PATTERN

SUPERNET = ipaddress.IPv4Network("10.0.0.0/10")
GATEWAY_HOST = 1
FIRST_SERVER_HOST = 10
LAST_SERVER_HOST = 250

_KREIS_OFFSET = 40
_MAX_KREIS = 15  # 16 blocks of 1024 /24s fill 10.0.0.0/10; block 0 stays unused


class AddressError(ValueError):
    """An AGS the address rule cannot place."""


def kommune_index(ags: str) -> int:
    """The Kommune's /24 number inside 10.0.0.0/10."""
    match = AGS_PATTERN.fullmatch(ags)
    if not match:
        raise AddressError(
            f"AGS {ags!r}: a Saarland AGS is '10' plus 3 digits (Kreis) or 6 digits (Gemeinde)"
        )
    k = int(match.group(1)) - _KREIS_OFFSET
    if not 1 <= k <= _MAX_KREIS:
        raise AddressError(
            f"AGS {ags!r}: Kreis {match.group(1)} is outside 041..055, the range the rule covers"
        )
    g = int(match.group(2)) if match.group(2) else 0
    return k * 1024 + g


def kommune_subnet(ags: str) -> ipaddress.IPv4Network:
    index = kommune_index(ags)
    base = int(SUPERNET.network_address) + index * 256
    return ipaddress.IPv4Network((base, 24))


def gateway(ags: str) -> ipaddress.IPv4Address:
    return kommune_subnet(ags).network_address + GATEWAY_HOST


def host_address(ags: str, host: int) -> ipaddress.IPv4Address:
    """The address of host number `host` (FIRST_SERVER_HOST..LAST_SERVER_HOST)."""
    if not FIRST_SERVER_HOST <= host <= LAST_SERVER_HOST:
        raise AddressError(
            f"AGS {ags}: host number {host} is outside {FIRST_SERVER_HOST}..{LAST_SERVER_HOST}"
        )
    return kommune_subnet(ags).network_address + host


def assign_hosts(instances: list[str], previous: dict[str, int]) -> dict[str, int]:
    """Host numbers for `instances`: a server keeps its number, a new one takes the lowest free.

    Numbers in `previous` stay reserved even for servers no longer listed, because their
    containers may still exist while the new ones start; the driver frees them after a
    successful deploy. `instances` should come in a stable order (the desired state lists
    services by request id), so a fresh Kommune gets the same numbers every time.
    """
    used = set(previous.values())
    free = (n for n in range(FIRST_SERVER_HOST, LAST_SERVER_HOST + 1) if n not in used)
    result: dict[str, int] = {}
    for name in instances:
        if name in previous:
            result[name] = previous[name]
            continue
        number = next(free, None)
        if number is None:
            raise AddressError(
                f"no free host number left for {name!r} "
                f"({LAST_SERVER_HOST - FIRST_SERVER_HOST + 1} servers per Kommune at most)"
            )
        result[name] = number
    return result
