"""Typed models of catalog/*.yaml. The JSON Schema checks shape; these carry behaviour."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from basisit.schutzbedarf import Schutzbedarf

_FLAVOR = re.compile(r"^SCS-(?P<cpu>\d+)[VTCL]-(?P<ram>\d+(?:\.\d+)?)(?:-(?P<disk>\d+)[ns]?)?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Flavor(_Model):
    """An SCS flavor name decoded: SCS-2V-4-20s = 2 vCPU, 4 GiB RAM, 20 GB SSD."""

    name: str
    vcpus: int
    ram_mib: int
    disk_gib: int

    @classmethod
    def parse(cls, name: str) -> Flavor:
        m = _FLAVOR.match(name)
        if not m or not m.group("disk"):
            raise ValueError(f"{name!r} is not an SCS flavor name with a root disk")
        flavor = cls(
            name=name,
            vcpus=int(m.group("cpu")),
            ram_mib=int(float(m.group("ram")) * 1024),
            disk_gib=int(m.group("disk")),
        )
        empty = [
            what
            for what, amount in (
                ("vCPU", flavor.vcpus), ("RAM", flavor.ram_mib), ("root disk", flavor.disk_gib)
            )
            if amount <= 0
        ]  # fmt: skip
        if empty:
            raise ValueError(f"{name!r} has no {' and no '.join(empty)}: a server needs all three")
        return flavor


class Metered(_Model):
    unit: str
    metric: str
    price_eur: Decimal
    estimate_parameter: str
    included: Decimal = Decimal(0)


class Price(_Model):
    valid_from: dt.date
    monthly_eur: Decimal
    one_time_eur: Decimal
    metered: tuple[Metered, ...] = ()


class Limit(_Model):
    minimum: float | None = None
    maximum: float | None = None
    max_items: int | None = None


class Plan(_Model):
    id: str
    name: str
    flavor: str | None = None
    limits: dict[str, Limit] = Field(default_factory=dict)
    prices: tuple[Price, ...]

    def price_on(self, day: dt.date) -> Price | None:
        """The price valid on `day`: the newest valid_from not after it."""
        valid = [p for p in self.prices if p.valid_from <= day]
        return max(valid, key=lambda p: p.valid_from) if valid else None


class Parameter(_Model):
    type: Literal["integer", "number", "string", "boolean", "list"]
    description: str
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    default: Any


class Volume(_Model):
    name: str
    mount: str
    size_parameter: str
    fixed_size: bool


class Port(_Model):
    port: int
    protocol: Literal["tcp", "udp"]
    source: Literal["kommune", "operators", "any"]


class Resources(_Model):
    server: bool
    volumes: tuple[Volume, ...] = ()
    ports: tuple[Port, ...] = ()
    object_storage: bool = False


class Dependencies(_Model):
    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()


class Approval(_Model):
    finance_above_monthly_eur: Decimal | None = None


class Service(_Model):
    id: str
    version: int
    name: str
    description: str
    category: str
    requestable: bool
    applies_to_every_server: bool = False
    schutzbedarf: tuple[Schutzbedarf, ...]
    dependencies: Dependencies
    approval: Approval
    roles: tuple[str, ...] = ()
    roles_on_dependencies: tuple[str, ...] = ()
    resources: Resources
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    plans: tuple[Plan, ...]

    @property
    def default_schutzbedarf(self) -> str:
        return self.schutzbedarf[0]

    def plan(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)


class Settings(_Model):
    catalog_version: str
    currency: Literal["EUR"] = "EUR"
    approval: Approval
    dns_zone_suffix: str
    backup_service: str
    # The SCS flavors the platform (Verwaltungscloud.Saarland) offers; plans may use only these.
    flavors: tuple[str, ...]


class Catalog(_Model):
    settings: Settings
    services: dict[str, Service]

    def service(self, service_id: str) -> Service | None:
        return self.services.get(service_id)

    def finance_threshold(self, service: Service) -> Decimal:
        own = service.approval.finance_above_monthly_eur
        if own is not None:
            return own
        default = self.settings.approval.finance_above_monthly_eur
        return default if default is not None else Decimal(0)

    @property
    def every_server_services(self) -> list[Service]:
        return [s for s in self.services.values() if s.applies_to_every_server]
