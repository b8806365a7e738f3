"""Threshold plans (预案): a breach that matches a plan drafts its warning and submits it at once.

A plan is data an admin edits (`keys.THRESHOLD_PLANS`): a reading type and a colour, where the
sensor is (areas, and the area's communities; none: anywhere) or which sensors (ids, or a group
written as a prefix ending in `*`), and the warning template (publisher/warning_templates.py) it
drafts from, for the breach's own area or the areas the plan names (an upstream gauge warns the
towns downstream). This module joins the two domains, as only the app layer may: it reads the
monitoring queue's breaches (citizen_report) and drafts through the release workflow (publisher).

Episodes. A sensor's episode runs from its first reading away from green to its return to green
(`keys.sensor_episode`). Each plan drafts once per episode, and only as the sensor reaches a new
peak: a sensor that stays red, or falls back from red to yellow, drafts nothing more. When it rises
from yellow to red, the red plan's warning updates the yellow one if that is published (the same
thread, so subscribers see one warning raised, not two), else it is a warning of its own. The
return to green ends the episode and offers the cancellation of what it published: the incident shows
the offer (`incident_plans`), and a person decides.

Crash safety: the consumer runs this before it acknowledges the breach, so a process that dies
midway leaves the item pending and the next consumer runs it again. Each draft is made under a
source key (`Warnings.create(source=…)`), so the second run finds the draft the first one made,
and submitting what is already submitted is skipped.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from citizen_report.signals import load_thresholds
from foundation.access.audit import Actor
from foundation.access.units import Units
from foundation.areas.registry import AreaRegistry
from foundation.errors import FieldError, ValidationFailed, WarncastError
from foundation.i18n import N_, SUPPORTED, Catalogs, tag_for
from foundation.settings import Settings
from foundation.store import keys
from foundation.store.streams import as_fields, decoded
from foundation.text import without_bidi
from publisher.model import ACTIVE, DRAFT, REJECTED, Message
from publisher.warning_templates import WarningTemplate, load_templates
from publisher.workflow import Warnings

log = logging.getLogger(__name__)

PLAN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
SENSOR_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}\*?$")
COLOURS = ("yellow", "red")  # a plan acts at one of the colours above green
RANK = {"green": 0, "yellow": 1, "red": 2}
MAX_PLANS = 500


@dataclass
class Plan:
    id: str
    name: dict[str, str]  # BCP 47 tag -> what the console calls it
    reading: str  # a reading type of the thresholds (citizen_report.signals)
    colour: str  # yellow | red: it drafts when a matching sensor reaches this colour
    template: str
    areas: list[str] = field(default_factory=list)  # where the sensor is (with their communities)
    sensors: list[str] = field(default_factory=list)  # ids, or prefixes ending in *
    warn_areas: list[str] = field(default_factory=list)  # the warning's areas; none: the sensor's own
    enabled: bool = True

    def label(self, tag: str) -> str:
        return self.name.get(tag) or self.name.get("en") or next(iter(self.name.values()), self.id)

    def matches(self, fields: dict[str, str], registry: AreaRegistry) -> bool:
        if not self.enabled or fields.get("type") != self.reading:
            return False
        if RANK.get(fields.get("colour", ""), 0) < RANK[self.colour]:
            return False
        sensor = fields.get("sensor", "")
        if self.sensors and not any(
            sensor.startswith(s[:-1]) if s.endswith("*") else sensor == s for s in self.sensors
        ):
            return False
        if self.areas:
            area = fields.get("area", "")
            return bool(area) and bool({area, *registry.ancestors(area)} & set(self.areas))
        return True


async def load_plans(redis: aioredis.Redis) -> list[Plan]:
    raw = await redis.get(keys.THRESHOLD_PLANS)
    return [Plan(**p) for p in json.loads(raw)] if raw else []


async def save_plans(redis: aioredis.Redis, plans: list[Plan]) -> None:
    await redis.set(keys.THRESHOLD_PLANS, json.dumps([asdict(p) for p in plans], ensure_ascii=False))


def validate_plans(
    body: Any,
    *,
    readings: dict[str, Any],
    templates: dict[str, WarningTemplate],
    registry: AreaRegistry,
    languages: tuple[str, ...],
) -> list[Plan]:
    """The whole table (`{"plans": [...]}`), every problem named by field, or ValidationFailed."""
    listed = body.get("plans") if isinstance(body, dict) else None
    if not isinstance(listed, list) or len(listed) > MAX_PLANS:
        raise ValidationFailed(
            [FieldError("plans", "type", N_("Send a list of up to %(max)s plans."), {"max": MAX_PLANS})]
        )
    errors = [FieldError(k, "unknown_field", N_("Unknown field.")) for k in sorted(set(body) - {"plans"})]
    plans: list[Plan] = []
    for index, entry in enumerate(listed):
        at = f"plans[{index}]"
        if not isinstance(entry, dict):
            errors.append(FieldError(at, "type", N_("The body must be a JSON object.")))
            continue
        before = len(errors)
        known = {"id", "name", "reading", "colour", "template", "areas", "sensors", "warn_areas", "enabled"}
        for unknown in sorted(set(entry) - known):
            errors.append(FieldError(f"{at}.{unknown}", "unknown_field", N_("Unknown field.")))
        plan_id = entry.get("id")
        if not isinstance(plan_id, str) or not PLAN_ID.match(plan_id):
            errors.append(
                FieldError(f"{at}.id", "format", N_("Use 1 to 48 lower-case letters, digits, - and _ for the id."))
            )
        elif any(p.id == plan_id for p in plans):
            errors.append(FieldError(f"{at}.id", "duplicate", N_("Two plans have this id.")))
        names = entry.get("name")
        if not isinstance(names, dict) or any(
            not isinstance(names.get(tag), str) or not without_bidi(names[tag]).strip() or len(names[tag]) > 80
            for tag in languages
        ):
            errors.append(
                FieldError(f"{at}.name", "required", N_("Give the name in each language (80 characters at most)."))
            )
        reading = entry.get("reading")
        if not isinstance(reading, str) or reading not in readings:
            errors.append(FieldError(f"{at}.reading", "unknown", N_("No thresholds are defined for this type.")))
        if entry.get("colour") not in COLOURS:
            errors.append(
                FieldError(f"{at}.colour", "choice", N_("Choose one of: %(choices)s."), {"choices": ", ".join(COLOURS)})
            )
        template = entry.get("template")
        if not isinstance(template, str) or template not in templates:
            errors.append(FieldError(f"{at}.template", "unknown", N_("No warning template has this id.")))
        lists: dict[str, list[str]] = {}
        for name in ("areas", "sensors", "warn_areas"):
            value = entry.get(name, [])
            if not isinstance(value, list) or len(value) > 200 or not all(isinstance(v, str) for v in value):
                errors.append(FieldError(f"{at}.{name}", "type", N_("Give a list of up to 200 codes.")))
                continue
            lists[name] = list(dict.fromkeys(value))
        for name in ("areas", "warn_areas"):
            for code in lists.get(name, []):
                if registry.get(code) is None:
                    errors.append(
                        FieldError(f"{at}.{name}", "unknown", N_("Unknown area code: %(code)s."), {"code": code})
                    )
        for sensor in lists.get("sensors", []):
            if not SENSOR_PATTERN.match(sensor):
                errors.append(
                    FieldError(
                        f"{at}.sensors",
                        "format",
                        N_("A sensor id, or the start of one followed by *: %(value)s"),
                        {"value": sensor},
                    )
                )
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            errors.append(FieldError(f"{at}.enabled", "type", N_("Must be true or false.")))
        if len(errors) > before:
            continue
        plans.append(
            Plan(
                id=str(plan_id),
                name={tag: without_bidi(str(names[tag])).strip() for tag in languages},  # type: ignore[index]
                reading=str(reading),
                colour=str(entry["colour"]),
                template=str(template),
                areas=lists["areas"],
                sensors=lists["sensors"],
                warn_areas=lists["warn_areas"],
                enabled=enabled,
            )
        )
    if errors:
        raise ValidationFailed(errors)
    return plans


@dataclass
class Episode:
    """One sensor's time away from green, as stored in `keys.sensor_episode`."""

    sensor: str
    started: str = ""  # the queue entry that began it ("": none yet)
    since: str = ""  # when it began (the reading's time)
    peak: str = "green"
    drafts: dict[str, str] = field(default_factory=dict)  # plan id -> message id
    ended: str = ""  # when the sensor read green again
    problems: dict[str, dict[str, str]] = field(default_factory=dict)  # plan id -> locale -> why it did not draft

    @classmethod
    def from_hash(cls, sensor: str, raw: dict[str, str]) -> Episode:
        return cls(
            sensor=sensor,
            started=raw.get("started", ""),
            since=raw.get("since", ""),
            peak=raw.get("peak", "green"),
            drafts=json.loads(raw.get("drafts") or "{}"),
            ended=raw.get("ended", ""),
            problems=json.loads(raw.get("problems") or "{}"),
        )

    def as_hash(self) -> dict[str, str]:
        return {
            "started": self.started,
            "since": self.since,
            "peak": self.peak,
            "drafts": json.dumps(self.drafts),
            "ended": self.ended,
            "problems": json.dumps(self.problems, ensure_ascii=False),
        }


async def load_episode(redis: aioredis.Redis, sensor: str) -> Episode | None:
    raw = await redis.hgetall(keys.sensor_episode(sensor))
    return Episode.from_hash(sensor, {decoded(k): decoded(v) for k, v in raw.items()}) if raw else None


class PlanDrafter:
    """Runs the plans for each breach the monitoring consumer takes (wired by the composition root
    on `ReportDesk.on_breach`)."""

    def __init__(self, redis: aioredis.Redis, warnings: Warnings, registry: AreaRegistry, settings: Settings) -> None:
        self.redis, self.warnings, self.registry, self.settings = redis, warnings, registry, settings
        self.units = Units(redis, settings)

    async def breach(self, entry_id: str, fields: dict[str, str]) -> None:
        sensor, colour = fields.get("sensor", ""), fields.get("colour", "")
        if not sensor or colour not in RANK:
            return
        episode = await load_episode(self.redis, sensor)
        if colour == "green":
            if episode and not episode.ended:
                episode.ended = fields.get("time", "")
                await self._store(episode)
            return
        if episode is None or episode.ended:
            episode = Episode(sensor, started=entry_id, since=fields.get("time", ""))
        if RANK[colour] < RANK[episode.peak]:
            return  # falling back below its peak drafts nothing (a person decides on a downgrade)
        # At its peak again (a yellow-red-yellow-red sensor, or this item redelivered after a crash)
        # only the plans that have not drafted yet run.
        episode.peak = colour
        await self._store(episode)
        plans = [p for p in await load_plans(self.redis) if p.matches(fields, self.registry)]
        templates = await load_templates(self.redis)
        readings = await load_thresholds(self.redis)
        for plan in _highest_per_template_event(plans, templates):
            if plan.id in episode.drafts:
                continue
            try:
                message = await self._draft(plan, templates[plan.template], fields, episode, readings)
            except WarncastError as exc:
                # A plan that cannot draft (an area outside the unit's jurisdiction, a template
                # that no longer fits) must not hold up the queue: the board shows why.
                episode.problems[plan.id] = describe(exc, self.warnings.catalogs)
                log.warning(
                    "plan %s could not draft for sensor %s: %s", plan.id, sensor, episode.problems[plan.id]["en"]
                )
            else:
                episode.drafts[plan.id] = message.id
                episode.problems.pop(plan.id, None)
            await self._store(episode)

    async def _store(self, episode: Episode) -> None:
        await self.redis.hset(keys.sensor_episode(episode.sensor), mapping=as_fields(episode.as_hash()))

    async def _draft(
        self,
        plan: Plan,
        template: WarningTemplate,
        fields: dict[str, str],
        episode: Episode,
        readings: dict[str, Any],
    ) -> Message:
        area = fields.get("area", "")
        areas = plan.warn_areas or ([area] if area else [])
        if not areas:
            raise ValidationFailed(
                [FieldError("areas", "required", N_("The sensor has no area and the plan names none."))]
            )
        body = template.body(self._values(fields, areas, readings), areas, self.warnings.now())
        org = await self.units.organisation()
        unit = org.responsible([template.event], areas[0], self.registry)
        actor = Actor(f"plan:{plan.id}", frozenset({"drafter"}), "system", unit.id if org.configured else "")
        source = {
            "key": f"{episode.sensor}:{episode.started}:{plan.id}",
            "kind": "plan",
            "plan": plan.id,
            "incident": f"S{episode.sensor}",
            "sensor": episode.sensor,
            "reading": fields.get("type", ""),
            "value": fields.get("value", ""),
            "unit": fields.get("unit", ""),
            "colour": fields.get("colour", ""),
            "time": fields.get("time", ""),
            **{f"name.{tag}": plan.label(tag) for tag in self.settings.languages},
        }
        earlier = await self._published_earlier(episode, template.event)
        if earlier is not None:
            return await self.warnings.update(actor, earlier.id, body, source=source)
        message = await self.warnings.create(actor, body, source=source)
        if message.state in (DRAFT, REJECTED):
            message = await self.warnings.submit(actor, message.id)
        return message

    async def _published_earlier(self, episode: Episode, event: str) -> Message | None:
        """The warning of this episode already in force for the same event, to raise rather than
        to double."""
        for message_id in episode.drafts.values():
            message = await self.warnings.get(message_id)
            if message.content.event == event and (current := await in_force(self.warnings, message)):
                return current
        return None

    def _values(self, fields: dict[str, str], areas: list[str], readings: dict[str, Any]) -> dict[str, dict[str, str]]:
        """The placeholders' values in each language."""
        kind = readings.get(fields.get("type", ""), {})
        try:
            at = datetime.fromisoformat(fields.get("time", "")).astimezone(self.settings.tz).strftime("%H:%M")
        except ValueError:
            at = ""
        out = {}
        for tag in self.settings.languages:
            places = [a.name_in(tag) for code in areas if (a := self.registry.get(code))]
            out[tag] = {
                "place": ("、" if tag.startswith("zh") else ", ").join(places),
                "value": _number(fields.get("value", "")),
                "unit": fields.get("unit", ""),
                "reading": str(
                    kind.get("name", {}).get(tag) or kind.get("name", {}).get("en") or fields.get("type", "")
                ),
                "time": at,
                "sensor": fields.get("sensor", ""),
            }
        return out


def _highest_per_template_event(plans: list[Plan], templates: dict[str, WarningTemplate]) -> list[Plan]:
    """Of the plans a reading matches, the highest colour's for each event type: a sensor that jumps
    from green to red drafts the red warning, not the yellow one and then the red one."""
    best: dict[str, int] = {}
    for plan in plans:
        event = templates[plan.template].event if plan.template in templates else ""
        best[event] = max(best.get(event, 0), RANK[plan.colour])
    return [p for p in plans if p.template in templates and RANK[p.colour] == best[templates[p.template].event]]


def _number(value: str) -> str:
    try:
        return f"{float(value):g}"
    except ValueError:
        return value


def describe(exc: WarncastError, catalogs: Catalogs) -> dict[str, str]:
    """What went wrong, in each language (the board shows the reader's): the fields' errors of a
    validation failure, else the error's own message."""
    parts = (
        [(e.message, e.params) for e in exc.errors]
        if isinstance(exc, ValidationFailed)
        else [(exc.message, exc.params)]
    )
    return {locale: " ".join(catalogs.text(locale, m, **p) for m, p in parts) for locale in SUPPORTED}


async def cancellation_offers(
    redis: aioredis.Redis, warnings: Warnings, sensor: str
) -> tuple[Episode | None, list[Message]]:
    """A sensor's episode and, once it is back to green, its warnings still in force: what the
    board and the warning's page offer to cancel."""
    episode = await load_episode(redis, sensor)
    if episode is None or not episode.ended:
        return episode, []
    offers = []
    for message_id in dict.fromkeys(episode.drafts.values()):
        if current := await in_force(warnings, await warnings.get(message_id)):
            offers.append(current)
    return episode, offers


async def in_force(warnings: Warnings, message: Message) -> Message | None:
    """The current message of `message`'s warning while that warning is in force, else None."""
    thread = await warnings.thread(message.thread)
    return await warnings.get(thread.current) if thread.status == ACTIVE and thread.current else None


async def incident_plans(redis: aioredis.Redis, warnings: Warnings, sensor: str, locale: str) -> dict[str, Any]:
    """What the plans did in a sensor's episode, for its incident: the warnings drafted (their
    current state), why a plan could not draft (in `locale`), and the cancellations on offer."""
    episode, offers = await cancellation_offers(redis, warnings, sensor)
    if episode is None:
        return {"since": "", "ended": "", "warnings": [], "problems": [], "cancellation_offered": []}
    drafted = []
    for plan_id, message_id in episode.drafts.items():
        message = await warnings.get(message_id)
        name = message.source.get(f"name.{tag_for(locale)}") or plan_id
        drafted.append(
            {"id": message.id, "plan": plan_id, "name": name, "grade": message.content.grade, "state": message.state}
        )
    return {
        "since": episode.since,
        "ended": episode.ended,
        "peak": episode.peak,
        "warnings": drafted,
        "problems": [{"plan": plan, "reason": why.get(locale) or why["en"]} for plan, why in episode.problems.items()],
        "cancellation_offered": [{"id": m.id, "grade": m.content.grade} for m in offers],
    }
