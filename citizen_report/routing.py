"""Routing: category × area → the responsible department, as a table an admin edits.

The table is one JSON document: departments (code → names) and rules `{category, area,
department}` where `category` may be "*" and `area` may be empty (everywhere). The most specific
rule wins: an exact category beats "*", and a rule for a smaller area beats one for an area that
contains it. Unmatched reports go to `default`.

Once issuing units are configured (foundation.access.units), the departments are those units: the
table's own list is replaced by them, and a rule or default naming something else falls back to
the release centre.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from citizen_report.model import CATEGORIES
from foundation.access.units import Unit, stored_units
from foundation.areas.registry import AreaRegistry
from foundation.errors import FieldError, ValidationFailed
from foundation.i18n import N_
from foundation.store import keys

DEFAULT_ROUTING: dict[str, Any] = {
    "default": "ops_centre",
    "departments": {
        "ops_centre": {"zh-CN": "城市运行管理中心", "en": "City operations centre"},
        "fire_rescue": {"zh-CN": "消防救援支队", "en": "Fire and rescue"},
        "gas_utility": {"zh-CN": "燃气集团", "en": "Gas utility"},
        "housing": {"zh-CN": "住房和城乡建设局", "en": "Housing and construction bureau"},
        "water_affairs": {"zh-CN": "水务局", "en": "Water affairs bureau"},
        "natural_resources": {"zh-CN": "自然资源局", "en": "Natural resources bureau"},
        "power_grid": {"zh-CN": "供电公司", "en": "Power grid company"},
        "ecology": {"zh-CN": "生态环境局", "en": "Ecology and environment bureau"},
        "city_management": {"zh-CN": "城市管理局", "en": "City management bureau"},
    },
    "rules": [
        {"category": "fire", "area": "", "department": "fire_rescue"},
        {"category": "gas_leak", "area": "", "department": "gas_utility"},
        {"category": "collapse", "area": "", "department": "housing"},
        {"category": "flood_people", "area": "", "department": "fire_rescue"},
        {"category": "waterlogging", "area": "", "department": "water_affairs"},
        {"category": "landslide", "area": "", "department": "natural_resources"},
        {"category": "power_line", "area": "", "department": "power_grid"},
        {"category": "chemical_smell", "area": "", "department": "ecology"},
        {"category": "fallen_tree", "area": "", "department": "city_management"},
        {"category": "road_damage", "area": "", "department": "city_management"},
    ],
}


async def load_routing(redis: aioredis.Redis) -> dict[str, Any]:
    raw = await redis.get(keys.ROUTING)
    table = json.loads(raw) if raw else DEFAULT_ROUTING
    units = await stored_units(redis)
    return with_units(table, units) if units else table


class RoutingForBatch:
    """The table read at most once for a batch of monitoring-queue items, and only if one of them
    needs it: an edit made while a batch is absorbed applies from the next, as if it came a moment
    later. Reading it for each new incident was a fifth of the consumer's time."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._table: dict[str, Any] | None = None

    async def table(self) -> dict[str, Any]:
        if self._table is None:
            self._table = await load_routing(self.redis)
        return self._table


def with_units(table: dict[str, Any], units: dict[str, Unit]) -> dict[str, Any]:
    """The table with the units as its departments."""
    root = next((u.id for u in units.values() if not u.parent), next(iter(units)))
    return {
        "default": table["default"] if table["default"] in units else root,
        "departments": {u.id: dict(u.names) for u in units.values()},
        "rules": [r for r in table["rules"] if r["department"] in units],
    }


async def unit_departments(redis: aioredis.Redis) -> dict[str, dict[str, str]] | None:
    """The departments an edited table must use when units are configured (None: its own)."""
    units = await stored_units(redis)
    return {u.id: dict(u.names) for u in units.values()} if units else None


async def save_routing(redis: aioredis.Redis, table: dict[str, Any]) -> None:
    await redis.set(keys.ROUTING, json.dumps(table, ensure_ascii=False))


def route(table: dict[str, Any], registry: AreaRegistry, category: str, area: str | None) -> str:
    """The department for a category in an area (most specific rule), else the default."""
    chain = [area, *registry.ancestors(area)] if area else []
    best: tuple[int, int] | None = None
    found = table["default"]
    for rule in table["rules"]:
        if rule["category"] not in (category, "*"):
            continue
        if rule["area"] and rule["area"] not in chain:
            continue
        rank = (1 if rule["category"] == category else 0, len(chain) - chain.index(rule["area"]) if rule["area"] else 0)
        if best is None or rank > best:
            best, found = rank, rule["department"]
    return found


def validate_routing(
    body: Any, registry: AreaRegistry, units: dict[str, dict[str, str]] | None = None
) -> dict[str, Any]:
    """Check an edited table; every problem named by its field. `units`: the configured units,
    which are the departments whatever the body lists."""
    errors: list[FieldError] = []
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "type", N_("The body must be a JSON object."))])
    departments = units if units is not None else body.get("departments")
    if not isinstance(departments, dict) or not departments:
        errors.append(FieldError("departments", "required", N_("List at least one department.")))
        departments = {}
    for code, names in departments.items():
        if not (isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 40):
            errors.append(FieldError(f"departments.{code}", "format", N_("Use letters, digits and _ in codes.")))
        if not isinstance(names, dict) or not all(isinstance(names.get(t), str) and names[t] for t in ("zh-CN", "en")):
            errors.append(FieldError(f"departments.{code}", "names", N_("Give the name in Chinese and English.")))
    default = body.get("default")
    if not isinstance(default, str) or default not in departments:
        errors.append(FieldError("default", "unknown", N_("Choose one of the departments.")))
    rules = body.get("rules")
    if not isinstance(rules, list):
        errors.append(FieldError("rules", "type", N_("Must be a list.")))
        rules = []
    clean_rules = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            errors.append(FieldError(f"rules[{i}]", "type", N_("The body must be a JSON object.")))
            continue
        category, area, department = rule.get("category"), rule.get("area") or "", rule.get("department")
        if category != "*" and (not isinstance(category, str) or category not in CATEGORIES):
            errors.append(FieldError(f"rules[{i}].category", "unknown", N_("Choose one of the listed categories.")))
        if area and (not isinstance(area, str) or registry.get(area) is None):
            errors.append(FieldError(f"rules[{i}].area", "unknown", N_("Choose an area from the list.")))
        if not isinstance(department, str) or department not in departments:
            errors.append(FieldError(f"rules[{i}].department", "unknown", N_("Choose one of the departments.")))
        clean_rules.append({"category": category, "area": area, "department": department})
    if errors:
        raise ValidationFailed(errors)
    return {"default": default, "departments": departments, "rules": clean_rules}
