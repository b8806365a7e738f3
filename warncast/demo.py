"""Demo data for `make run`: the fictional city, one operator per role, a few hundred residents
subscribed by SMS and Telegram (delivered into the outbox: the demo has no provider account), a
registered kiosk screen and a warning in force, so a newcomer sees reach, outbox entries, delivery
progress and a live screen."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from channels.screens.registry import Screen, ScreenRegistry
from citizen_report.routing import save_routing, validate_routing
from foundation.access.units import parse_unit
from foundation.areas.registry import store_areas
from publisher.model import Message
from publisher.subscribers import ACTIVE, Subscriber
from publisher.taxonomy import EVENTS
from warncast.demo_city import demo_areas
from warncast.demo_units import demo_routing, demo_units
from warncast.services import Services
from warncast.threshold_plans import Plan, load_plans, save_plans

DEMO_USERS = {
    "drafter": ["drafter"],
    "approver": ["approver"],
    "chief": ["chief"],
    "chief2": ["chief"],
    "triage": ["triage"],
    "admin": ["admin"],
    "met.drafter": ["drafter"],
    "met.approver": ["approver"],
    "binjiang.drafter": ["drafter"],
    "binjiang.approver": ["approver"],
}
# Users outside the release centre, and their units.
DEMO_USER_UNITS = {
    "met.drafter": "meteorology",
    "met.approver": "meteorology",
    "binjiang.drafter": "binjiang_centre",
    "binjiang.approver": "binjiang_centre",
}
# Threshold plans over the default thresholds and warning templates: any rain gauge drafts the
# rainstorm warning of its colour for its own community, any river gauge the flood warning.
DEMO_PLANS: list[dict[str, Any]] = [
    {
        "id": "rain-yellow",
        "name": {"zh-CN": "雨量站黄色", "en": "Rain gauge, yellow"},
        "reading": "rainfall_1h",
        "colour": "yellow",
        "template": "rainstorm-yellow",
    },
    {
        "id": "rain-red",
        "name": {"zh-CN": "雨量站红色", "en": "Rain gauge, red"},
        "reading": "rainfall_1h",
        "colour": "red",
        "template": "rainstorm-red",
    },
    {
        "id": "river-red",
        "name": {"zh-CN": "水位站红色", "en": "River gauge, red"},
        "reading": "water_level",
        "colour": "red",
        "template": "flood-red",
    },
    {
        "id": "gas-red",
        "name": {"zh-CN": "燃气监测红色", "en": "Gas monitor, red"},
        "reading": "gas_ppm",
        "colour": "red",
        "template": "gas-leak-red",
    },
]
DEMO_SMS_SUBSCRIBERS = 300
DEMO_TELEGRAM_SUBSCRIBERS = 200
DEMO_SCREEN = "demo-plaza"


def _logins_file(services: Services) -> Path:
    return services.settings.data_dir / "demo-logins.txt"


async def load_demo(services: Services) -> list[str]:
    """Idempotent: areas are reloaded, users kept, a new demo warning only when none is in force."""
    notes: list[str] = []
    count = await store_areas(services.redis, demo_areas())
    await services.registry.refresh(services.redis)
    notes.append(f"loaded {count} areas of the demo city")
    if not (await services.warnings.units.organisation()).configured:
        bodies = demo_units([a.as_json() for a in services.registry.areas if a.level == "district"])
        units = [parse_unit(b, services.registry, set(EVENTS)) for b in bodies]
        await services.warnings.units.replace_all(units, services.registry)
        await save_routing(services.redis, validate_routing(demo_routing(bodies), services.registry))
        notes.append(f"loaded {len(units)} issuing units")
    if not await load_plans(services.redis):
        await save_plans(services.redis, [Plan(**p) for p in DEMO_PLANS])
        notes.append(f"loaded {len(DEMO_PLANS)} threshold plans")
    path = _logins_file(services)
    path.parent.mkdir(parents=True, exist_ok=True)
    logins = dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line) if path.exists() else {}
    for name, roles in DEMO_USERS.items():
        if not await services.accounts.user_exists(name):
            password = secrets.token_urlsafe(9)
            unit = DEMO_USER_UNITS.get(name, "")
            await services.accounts.create_user(name, roles, password, display=name.title(), unit=unit)
            logins[name] = password
    path.write_text("".join(f"{name} {password}\n" for name, password in logins.items()))
    path.chmod(0o600)
    notes.append(await _demo_subscribers(services))
    notes.append(await _demo_screen(services))
    if not await services.warnings.active():
        message = await _demo_warning(services)
        notes.append(f"published demo warning {message.id}")
    return notes


async def _demo_subscribers(services: Services) -> str:
    """Residents in every community, in both languages; the fictional numbers are in the +86 138
    0000 range and only ever reach the outbox. Half the SMS residents opted in to yellow warnings (an
    SMS subscriber's default is orange and above), so the demo's yellow warning reaches some by SMS."""
    communities = [a.code for a in services.registry.areas if a.level == "community"]
    subscribers = []
    for n in range(DEMO_SMS_SUBSCRIBERS):
        subscribers.append(("sms", f"+86138000{n:05d}", "yellow" if n % 2 else "orange"))
    for n in range(DEMO_TELEGRAM_SUBSCRIBERS):
        subscribers.append(("telegram", str(900_000_000 + n), "blue" if n % 3 == 0 else "yellow"))
    saved = []
    for n, (channel, address, min_grade) in enumerate(subscribers):
        lang = "en" if n % 4 == 0 else "zh_Hans"
        before = await services.subscribers.get(channel, address)
        sub = Subscriber(
            channel,
            address,
            status=ACTIVE,
            areas=[communities[n % len(communities)]],
            lang=lang,
            min_grade=min_grade,
            source="demo",
        )
        saved.append(await services.subscribers.save(sub, before=before))
    await services.subscribers.replicated(*saved)
    return f"subscribed {DEMO_SMS_SUBSCRIBERS} demo residents by SMS and {DEMO_TELEGRAM_SUBSCRIBERS} by Telegram"


async def _demo_screen(services: Services) -> str:
    district = next(a for a in services.registry.areas if a.level == "district")
    screen = Screen(DEMO_SCREEN, "地铁广场 Metro plaza", district.code, location="Metro hall, exit A")
    screens = ScreenRegistry(services.redis)
    await screens.save(screen, create=not (await screens.all(fresh=True)).get(DEMO_SCREEN))
    return f"registered the kiosk screen /screens/{DEMO_SCREEN}"


async def _demo_warning(services: Services) -> Message:
    drafter = await services.accounts.get_actor("drafter")
    approver = await services.accounts.get_actor("approver")
    assert drafter and approver
    flow = services.warnings
    district = next(a for a in services.registry.areas if a.level == "district")
    body = {
        "grade": "yellow",
        "event": "rainstorm",
        "category": "Met",
        "areas": [district.code],
        "expires": (flow.now() + timedelta(hours=24)).isoformat(),
        "info": {
            "zh-CN": {
                "headline": f"{district.name['zh-CN']}发布暴雨黄色预警",
                "description": "预计未来6小时内将出现50毫米以上降雨，局地伴有雷电和短时大风。",
                "instruction": "减少外出，远离低洼地带和地下空间，注意防范城市内涝。",
            },
            "en": {
                "headline": f"Yellow rainstorm warning for {district.name['en']}",
                "description": "More than 50 mm of rain is expected in the next 6 hours, with local thunder and gusts.",
                "instruction": "Limit travel, keep away from low-lying areas and underground spaces.",
            },
        },
    }
    message = await flow.create(drafter, body)
    await flow.submit(drafter, message.id)
    return await flow.approve(approver, message.id, "Demo data")


def demo_logins(services: Services) -> list[tuple[str, str]]:
    path = _logins_file(services)
    if not path.exists():
        return []
    pairs = [line.split(" ", 1) for line in path.read_text().splitlines() if " " in line]
    return [(name, password) for name, password in pairs]
