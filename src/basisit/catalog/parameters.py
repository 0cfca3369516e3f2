"""Parameter values checked against a service's parameter specs and a plan's limits.

A catalog rule: the catalog checks its own defaults with it, the requests their values.
"""

from __future__ import annotations

import math
import re
from typing import Any

from basisit.catalog.models import Limit, Parameter, Plan, Service


def check_value(name: str, spec: Parameter, value: Any, limit: Limit | None) -> list[str]:
    """Problems with one value; empty when it fits the spec and the plan's limit."""
    problems: list[str] = []
    low = spec.minimum if limit is None or limit.minimum is None else limit.minimum
    high = spec.maximum if limit is None or limit.maximum is None else limit.maximum
    if spec.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{name}: {value!r} is not a whole number"]
    elif spec.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{name}: {value!r} is not a number"]
        if not math.isfinite(value):
            return [f"{name}: {value!r} is not a finite number"]
    elif spec.type == "boolean":
        if not isinstance(value, bool):
            return [f"{name}: {value!r} is not true or false"]
    elif spec.type == "string":
        if not isinstance(value, str):
            return [f"{name}: {value!r} is not text"]
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            problems.append(f"{name}: {value!r} does not match {spec.pattern}")
    elif spec.type == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return [f"{name}: {value!r} is not a list of names"]
        max_items = spec.max_items if limit is None or limit.max_items is None else limit.max_items
        if spec.min_items is not None and len(value) < spec.min_items:
            problems.append(f"{name}: needs at least {spec.min_items} entries, got {len(value)}")
        if max_items is not None and len(value) > max_items:
            problems.append(f"{name}: allows at most {max_items} entries, got {len(value)}")
        if len(set(value)) != len(value):
            problems.append(f"{name}: entries must be unique")
        if spec.pattern:
            problems.extend(
                f"{name}: {v!r} does not match {spec.pattern}"
                for v in value
                if not re.fullmatch(spec.pattern, v)
            )
    if spec.type in ("integer", "number"):
        if low is not None and value < low:
            problems.append(f"{name}: {value} is below the minimum {low:g}")
        if high is not None and value > high:
            problems.append(f"{name}: {value} is above the maximum {high:g} of this plan")
    return problems


def coerce(spec: Parameter, raw: str) -> Any:
    """A value given on the command line as text, in the parameter's type."""
    if spec.type == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    if spec.type == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if spec.type == "boolean":
        return {"true": True, "yes": True, "false": False, "no": False}.get(raw.lower(), raw)
    if spec.type == "list":
        return [v.strip() for v in raw.split(",") if v.strip()]
    return raw


def resolve(
    service: Service, plan: Plan, given: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Defaults filled in, every value checked; returns (parameters, problems)."""
    known = ", ".join(service.parameters) or "none"
    problems = [
        f"{name}: unknown parameter for {service.id} (known: {known})"
        for name in given
        if name not in service.parameters
    ]
    values: dict[str, Any] = {}
    for name, spec in service.parameters.items():
        value = given.get(name, spec.default)
        if isinstance(value, str) and spec.type != "string":
            value = coerce(spec, value)
        problems.extend(check_value(name, spec, value, plan.limits.get(name)))
        values[name] = value
    return values, problems
