"""Warning templates: the texts a release office agrees in advance for a kind of warning.

A template is data an admin edits (`keys.WARNING_TEMPLATES`, one JSON document): a grade, an event
type, an expiry in hours and, per language, a headline, description and instruction that may hold
placeholders (`{place}`, `{value}`, …). Threshold plans (warncast/threshold_plans.py) draft from
them with a breach's reading filled in; a drafter starts a manual warning from one ("start from a
template") and fills in what the reading would have given. Filling happens before the ordinary
validation (`publisher.validation`), so a template can never make a warning the API would refuse.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from foundation.errors import FieldError, ValidationFailed
from foundation.i18n import N_
from foundation.store import keys
from foundation.text import without_bidi
from publisher.taxonomy import EVENTS, GRADES
from publisher.validation import LIMITS, PLACEHOLDERS

TEMPLATE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MAX_TEMPLATES = 200
MAX_EXPIRY_HOURS = 72


@dataclass
class WarningTemplate:
    id: str
    name: dict[str, str]  # BCP 47 tag -> what the console calls it
    grade: str
    event: str
    expires_hours: int
    info: dict[str, dict[str, str]] = field(default_factory=dict)  # tag -> headline, description, instruction

    def label(self, tag: str) -> str:
        return self.name.get(tag) or self.name.get("en") or next(iter(self.name.values()), self.id)

    def body(
        self, values: dict[str, dict[str, str]], areas: list[str], now: datetime, *, keep_unknown: bool = False
    ) -> dict[str, Any]:
        """A warning body for `Warnings.create`: the texts with `values` (per language tag) filled in.
        `keep_unknown` leaves a placeholder with no value as it is, for a drafter to fill."""
        info = {
            tag: {part: fill(text, values.get(tag, {}), keep_unknown) for part, text in texts.items()}
            for tag, texts in self.info.items()
        }
        expires = (now + timedelta(hours=self.expires_hours)).replace(microsecond=0)
        return {"grade": self.grade, "event": self.event, "areas": areas, "expires": expires.isoformat(), "info": info}


def fill(text: str, values: dict[str, str], keep_unknown: bool = False) -> str:
    """`text` with each `{name}` replaced by its value. Plain substitution, not str.format: the texts
    are data an admin typed, and format strings can reach attributes."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        return match.group(0) if keep_unknown else ""

    return PLACEHOLDER.sub(one, text)


DEFAULT_TEMPLATES: list[dict[str, Any]] = [
    {
        "id": "rainstorm-yellow",
        "name": {"zh-CN": "暴雨黄色预警（雨量站）", "en": "Yellow rainstorm warning (rain gauge)"},
        "grade": "yellow",
        "event": "rainstorm",
        "expires_hours": 6,
        "info": {
            "zh-CN": {
                "headline": "{place}暴雨黄色预警",
                "description": "{time}，{place}{sensor}站{reading}达{value}{unit}，预计未来6小时仍有强降雨。",
                "instruction": "请减少外出，远离低洼地带和地下空间，注意防范城市内涝。",
            },
            "en": {
                "headline": "Yellow rainstorm warning for {place}",
                "description": "At {time}, station {sensor} in {place} measured {reading} of {value} {unit}. "
                "Heavy rain is expected to continue for the next 6 hours.",
                "instruction": "Avoid going out, keep away from low-lying areas and underground spaces, "
                "and watch for street flooding.",
            },
        },
    },
    {
        "id": "rainstorm-red",
        "name": {"zh-CN": "暴雨红色预警（雨量站）", "en": "Red rainstorm warning (rain gauge)"},
        "grade": "red",
        "event": "rainstorm",
        "expires_hours": 3,
        "info": {
            "zh-CN": {
                "headline": "{place}暴雨红色预警",
                "description": "{time}，{place}{sensor}站{reading}达{value}{unit}，强降雨仍将持续。",
                "instruction": "请立即停止户外活动，转移到安全地带，切勿进入地下通道和积水路段。",
            },
            "en": {
                "headline": "Red rainstorm warning for {place}",
                "description": "At {time}, station {sensor} in {place} measured {reading} of {value} {unit}. "
                "Intense rain will go on.",
                "instruction": "Stop all outdoor activity and move to safe ground now. "
                "Do not enter underpasses or flooded roads.",
            },
        },
    },
    {
        "id": "flood-red",
        "name": {"zh-CN": "洪水红色预警（水位站）", "en": "Red flood warning (water level)"},
        "grade": "red",
        "event": "flood",
        "expires_hours": 12,
        "info": {
            "zh-CN": {
                "headline": "{place}洪水红色预警",
                "description": "{time}，{place}{sensor}站{reading}达{value}{unit}，已超过警戒水位。",
                "instruction": "沿河低洼地区居民请立即按指引转移，不要靠近河堤。",
            },
            "en": {
                "headline": "Red flood warning for {place}",
                "description": "At {time}, gauge {sensor} in {place} read a {reading} of {value} {unit}, "
                "above the danger line.",
                "instruction": "If you live in a low-lying area by the river, move out now as directed. "
                "Keep away from the embankments.",
            },
        },
    },
    {
        "id": "gas-leak-red",
        "name": {"zh-CN": "燃气泄漏红色预警", "en": "Red gas leak warning"},
        "grade": "red",
        "event": "gas_leak",
        "expires_hours": 2,
        "info": {
            "zh-CN": {
                "headline": "{place}燃气泄漏红色预警",
                "description": "{time}，{place}{sensor}监测点{reading}达{value}{unit}。",
                "instruction": "请勿使用明火和电器开关，立即离开该区域并听从现场指挥。",
            },
            "en": {
                "headline": "Red gas leak warning for {place}",
                "description": "At {time}, monitor {sensor} in {place} measured {reading} at {value} {unit}.",
                "instruction": "Do not use flames or electrical switches. Leave the area now "
                "and follow the instructions of the responders.",
            },
        },
    },
]


async def load_templates(redis: aioredis.Redis) -> dict[str, WarningTemplate]:
    raw = await redis.get(keys.WARNING_TEMPLATES)
    stored = json.loads(raw) if raw else DEFAULT_TEMPLATES
    return {t["id"]: WarningTemplate(**t) for t in stored}


async def save_templates(redis: aioredis.Redis, templates: list[WarningTemplate]) -> None:
    await redis.set(keys.WARNING_TEMPLATES, json.dumps([asdict(t) for t in templates], ensure_ascii=False))


def as_json(templates: dict[str, WarningTemplate]) -> list[dict[str, Any]]:
    return [asdict(t) for t in templates.values()]


def validate_templates(body: Any, languages: tuple[str, ...]) -> list[WarningTemplate]:
    """The whole table (`{"templates": [...]}`), every problem named by field, or ValidationFailed."""
    errors: list[FieldError] = []
    listed = body.get("templates") if isinstance(body, dict) else None
    if not isinstance(listed, list) or len(listed) > MAX_TEMPLATES:
        raise ValidationFailed(
            [FieldError("templates", "type", N_("Send a list of up to %(max)s templates."), {"max": MAX_TEMPLATES})]
        )
    errors.extend(FieldError(k, "unknown_field", N_("Unknown field.")) for k in sorted(set(body) - {"templates"}))
    out: list[WarningTemplate] = []
    seen: set[str] = set()
    for index, entry in enumerate(listed):
        template = _template(errors, f"templates[{index}]", entry, languages)
        if template is None:
            continue
        if template.id in seen:
            errors.append(FieldError(f"templates[{index}].id", "duplicate", N_("Two templates have this id.")))
        seen.add(template.id)
        out.append(template)
    if errors:
        raise ValidationFailed(errors)
    return out


def _template(errors: list[FieldError], at: str, entry: Any, languages: tuple[str, ...]) -> WarningTemplate | None:
    if not isinstance(entry, dict):
        errors.append(FieldError(at, "type", N_("The body must be a JSON object.")))
        return None
    before = len(errors)
    for unknown in sorted(set(entry) - {"id", "name", "grade", "event", "expires_hours", "info"}):
        errors.append(FieldError(f"{at}.{unknown}", "unknown_field", N_("Unknown field.")))
    template_id = entry.get("id")
    if not isinstance(template_id, str) or not TEMPLATE_ID.match(template_id):
        errors.append(
            FieldError(f"{at}.id", "format", N_("Use 1 to 48 lower-case letters, digits, - and _ for the id."))
        )
    if entry.get("grade") not in GRADES:
        errors.append(
            FieldError(f"{at}.grade", "choice", N_("Choose one of: %(choices)s."), {"choices": ", ".join(GRADES)})
        )
    if not isinstance(entry.get("event"), str) or entry.get("event") not in EVENTS:
        errors.append(FieldError(f"{at}.event", "choice", N_("Choose an event type from the list.")))
    hours = entry.get("expires_hours")
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_EXPIRY_HOURS:
        errors.append(
            FieldError(
                f"{at}.expires_hours", "range", N_("Give whole hours from 1 to %(max)s."), {"max": MAX_EXPIRY_HOURS}
            )
        )
    names = _texts(errors, f"{at}.name", entry.get("name"), languages, 80)
    info_raw = entry.get("info")
    info: dict[str, dict[str, str]] = {}
    if not isinstance(info_raw, dict):
        errors.append(FieldError(f"{at}.info", "type", N_("Give the texts for each language.")))
    else:
        for unknown in sorted(set(info_raw) - set(languages)):
            errors.append(FieldError(f"{at}.info.{unknown}", "unknown_field", N_("Unknown language.")))
        for tag in languages:
            texts = info_raw.get(tag)
            if not isinstance(texts, dict):
                errors.append(FieldError(f"{at}.info.{tag}", "required", N_("Give the texts in this language.")))
                continue
            info[tag] = {}
            for unknown in sorted(set(texts) - set(LIMITS)):
                errors.append(FieldError(f"{at}.info.{tag}.{unknown}", "unknown_field", N_("Unknown field.")))
            for part, limit in LIMITS.items():
                where = f"{at}.info.{tag}.{part}"
                value = texts.get(part, "")
                if not isinstance(value, str):
                    errors.append(FieldError(where, "type", N_("Must be text.")))
                    continue
                value = without_bidi(value).strip()
                if not value and part != "instruction":
                    errors.append(FieldError(where, "required", N_("This field is required.")))
                if len(value) > limit:
                    errors.append(FieldError(where, "too_long", N_("At most %(max)s characters."), {"max": limit}))
                for name in PLACEHOLDER.findall(value):
                    if name not in PLACEHOLDERS:
                        errors.append(
                            FieldError(
                                where,
                                "placeholder",
                                N_("Unknown placeholder {%(name)s}: use %(known)s."),
                                {"name": name, "known": ", ".join("{" + p + "}" for p in PLACEHOLDERS)},
                            )
                        )
                info[tag][part] = value
    if len(errors) > before:
        return None
    return WarningTemplate(
        id=str(template_id),
        name=names,
        grade=entry["grade"],
        event=entry["event"],
        expires_hours=int(str(hours)),
        info=info,
    )


def _texts(errors: list[FieldError], at: str, value: Any, languages: tuple[str, ...], limit: int) -> dict[str, str]:
    """A name in every configured language."""
    if not isinstance(value, dict):
        errors.append(FieldError(at, "type", N_("Give the name in each language.")))
        return {}
    out = {}
    for tag in languages:
        text = value.get(tag)
        if not isinstance(text, str) or not without_bidi(text).strip():
            errors.append(FieldError(f"{at}.{tag}", "required", N_("Give the name in this language.")))
        elif len(text) > limit:
            errors.append(FieldError(f"{at}.{tag}", "too_long", N_("At most %(max)s characters."), {"max": limit}))
        else:
            out[tag] = without_bidi(text).strip()
    for unknown in sorted(set(value) - set(languages)):
        errors.append(FieldError(f"{at}.{unknown}", "unknown_field", N_("Unknown language.")))
    return out
