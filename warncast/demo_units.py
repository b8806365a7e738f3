"""The demo city's issuing units: the city release centre, six departments, one centre per district.

Departments issue their own hazards city-wide (classified management); each district centre issues
every hazard inside its district and proposes to the city centre beyond it. The triage routing's
departments are these units, with reports routed by category and, failing that, by district.
"""

from __future__ import annotations

from typing import Any

# (id, zh, en, sector + unit code, event types)
DEPARTMENTS = (
    (
        "meteorology",
        "澜江市气象局",
        "Lanjiang Meteorological Bureau",
        "010001",
        ("rainstorm", "typhoon", "thunderstorm", "heat", "cold_wave", "blizzard", "fog", "haze"),
    ),
    (
        "water_affairs",
        "澜江市水务局",
        "Lanjiang Water Affairs Bureau",
        "020001",
        ("flood", "waterlogging", "water_outage"),
    ),
    (
        "emergency",
        "澜江市应急管理局",
        "Lanjiang Emergency Management Bureau",
        "030001",
        ("fire", "hazmat", "gas_leak", "collapse", "earthquake", "power_outage"),
    ),
    (
        "natural_resources",
        "澜江市规划和自然资源局",
        "Lanjiang Planning and Natural Resources Bureau",
        "040001",
        ("landslide",),
    ),
    ("health", "澜江市卫生健康委员会", "Lanjiang Health Commission", "050001", ("epidemic",)),
    ("ecology", "澜江市生态环境局", "Lanjiang Ecology and Environment Bureau", "060001", ("air_pollution",)),
)
# Report categories (citizen_report.model.CATEGORIES) -> the department that handles them.
CATEGORY_DEPARTMENTS = {
    "fire": "emergency",
    "gas_leak": "emergency",
    "collapse": "emergency",
    "flood_people": "emergency",
    "waterlogging": "water_affairs",
    "landslide": "natural_resources",
    "chemical_smell": "ecology",
}


def demo_units(districts: list[dict[str, Any]], sender_domain: str = "lanjiang.example") -> list[dict[str, Any]]:
    """Unit bodies (as the API takes them) for the demo city; `districts`: area records of level district."""
    units: list[dict[str, Any]] = [
        {
            "id": "centre",
            "names": {"zh-CN": "澜江市预警信息发布中心", "en": "Lanjiang Warning Release Centre"},
            "kind": "centre",
            "sender": f"warncast@{sender_domain}",
            "code": "000001",
            "contacts": [{"name": "值班室", "phone": "+86 571 8000 0110"}],
        }
    ]
    for uid, zh, en, code, events in DEPARTMENTS:
        units.append(
            {
                "id": uid,
                "names": {"zh-CN": zh, "en": en},
                "kind": "department",
                "parent": "centre",
                "events": list(events),
                "sender": f"{uid}@{sender_domain}",
                "code": code,
            }
        )
    for index, district in enumerate(districts, start=2):
        short = district["name"]["en"].split()[0].lower()
        units.append(
            {
                "id": f"{short}_centre",
                "names": {
                    "zh-CN": f"{district['name']['zh-CN']}预警信息发布中心",
                    "en": f"{district['name']['en']} Warning Release Centre",
                },
                "kind": "subcentre",
                "parent": "centre",
                "areas": [district["code"]],
                "sender": f"warncast.{short}@{sender_domain}",
                "code": f"000{index:03d}",
            }
        )
    return units


def demo_routing(units: list[dict[str, Any]]) -> dict[str, Any]:
    """The triage routing over the demo units: by category first, else the district's centre."""
    rules = [{"category": c, "area": "", "department": d} for c, d in CATEGORY_DEPARTMENTS.items()]
    rules += [
        {"category": "*", "area": u["areas"][0], "department": u["id"]} for u in units if u["kind"] == "subcentre"
    ]
    return {
        "default": "centre",
        "departments": {u["id"]: u["names"] for u in units},
        "rules": rules,
    }
