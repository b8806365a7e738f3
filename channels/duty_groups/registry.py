"""The duty-group registry: each unit's group robots, their webhook credentials kept apart.

A record says which unit a group belongs to, which tool it is, from which grade on it gets
warnings, whether drills go to it, and what it receives: warnings in the unit's jurisdiction,
pages for approvals waiting on the unit, incidents routed to the unit. The webhook key (WeCom),
access token (DingTalk) or hook id (Feishu) and the signing secret are stored apart and never
listed; a group registered without a key delivers into its channel's outbox.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from channels.duty_groups.tools import DINGTALK, FEISHU, TOOLS
from foundation.access.units import Organisation
from foundation.areas.registry import AreaRegistry
from foundation.errors import Conflict, NotFound, ValidationFailed
from foundation.i18n import N_
from foundation.store import keys
from foundation.store.streams import decoded, decoded_hash
from publisher.taxonomy import GRADES
from publisher.validation import Collector, clean_text

GROUP_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
TOKEN = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
RECEIVES = ("warnings", "approvals", "incidents")
LANGUAGES = ("zh-CN", "en")
FIELDS = {"id", "unit", "tool", "name", "min_grade", "receives", "include_drills", "active", "lang", "token", "secret"}
READ_ONLY = {"token_hint", "signed", "created", "updated", "deactivated", "links"}


@dataclass(frozen=True)
class DutyGroup:
    id: str
    unit: str
    tool: str
    name: str
    min_grade: str = "blue"
    receives: tuple[str, ...] = RECEIVES
    include_drills: bool = True  # duty staff take part in drills
    active: bool = True
    lang: str = "zh-CN"
    token_hint: str = ""  # "…" + the key's last 4 characters; "": no key, the outbox
    signed: bool = False
    created: str = ""
    updated: str = ""
    deactivated: str = ""  # why posting stopped (the tool said the robot was removed)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["receives"] = list(self.receives)
        return data

    def wants_warning(self, grade: str, drill: bool) -> bool:
        return (
            self.active
            and "warnings" in self.receives
            and GRADES.index(grade) >= GRADES.index(self.min_grade)
            and (self.include_drills or not drill)
        )


@dataclass(frozen=True)
class Credentials:
    token: str = ""
    secret: str = ""


def parse_group(
    body: Any, org: Organisation, *, group_id: str | None = None, keep: Credentials | None = None
) -> tuple[DutyGroup, Credentials]:
    """Validate an API or console body; a replacement without token/secret keeps the old ones."""
    if not isinstance(body, dict):
        errs = Collector()
        errs.add("", "type", N_("The body must be a JSON object."))
        raise ValidationFailed(errs.errors)
    errs = Collector()
    for unknown in sorted(set(body) - FIELDS - READ_ONLY):
        errs.add(unknown, "unknown_field", N_("Unknown field."))
    gid = group_id if group_id is not None else body.get("id")
    if not isinstance(gid, str) or not GROUP_ID.match(gid):
        errs.add("id", "format", N_("Use 1 to 40 lower-case letters, digits and hyphens."))
        gid = ""
    unit = body.get("unit")
    if not isinstance(unit, str) or org.find(unit) is None:
        errs.add("unit", "unknown", N_("Choose one of the units."))
        unit = ""
    tool = body.get("tool")
    if tool not in TOOLS:
        errs.add("tool", "choice", N_("Choose one of: %(choices)s."), choices=", ".join(TOOLS))
    name = clean_text(errs, "name", body.get("name"), 80, required=True)
    min_grade = body.get("min_grade", "blue")
    if min_grade not in GRADES:
        errs.add("min_grade", "choice", N_("Choose one of: %(choices)s."), choices=", ".join(GRADES))
    receives = body.get("receives", list(RECEIVES))
    if not isinstance(receives, list) or not receives or any(r not in RECEIVES for r in receives):
        errs.add("receives", "choice", N_("Choose one or more of: %(choices)s."), choices=", ".join(RECEIVES))
        receives = []
    lang = body.get("lang", "zh-CN")
    if lang not in LANGUAGES:
        errs.add("lang", "choice", N_("Choose one of: %(choices)s."), choices=", ".join(LANGUAGES))
    flags = {}
    for flag, default in (("active", True), ("include_drills", True)):
        flags[flag] = body.get(flag, default)
        if not isinstance(flags[flag], bool):
            errs.add(flag, "type", N_("Must be true or false."))
    old = keep or Credentials()
    token = body.get("token", old.token)
    if not isinstance(token, str) or (token and not TOKEN.match(token)):
        errs.add(
            "token", "format", N_("Give the robot's key or token as the tool shows it (letters, digits, - and _).")
        )
        token = ""
    secret = body.get("secret", old.secret)
    if not isinstance(secret, str) or len(secret) > 200:
        errs.add("secret", "format", N_("Must be text of at most %(max)s characters."), max=200)
        secret = ""
    elif secret and tool not in (DINGTALK, FEISHU):
        errs.add("secret", "unsupported", N_("Only DingTalk and Feishu robots sign their requests."))
    if errs.errors:
        raise ValidationFailed(errs.errors)
    group = DutyGroup(
        id=gid,
        unit=unit,
        tool=str(tool),
        name=name,
        min_grade=min_grade,
        receives=tuple(r for r in RECEIVES if r in receives),
        lang=lang,
        token_hint=f"…{token[-4:]}" if token else "",
        signed=bool(secret),
        **flags,
    )
    return group, Credentials(token, secret)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class DutyGroups:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def all(self) -> dict[str, DutyGroup]:
        raw = decoded_hash(await self.redis.hgetall(keys.DUTY_GROUPS))
        return {gid: _from_json(value) for gid, value in sorted(raw.items())}

    async def get(self, group_id: str) -> DutyGroup:
        raw = await self.redis.hget(keys.DUTY_GROUPS, group_id) if GROUP_ID.match(group_id) else None
        if raw is None:
            raise NotFound(N_("No duty group with this id."))
        return _from_json(decoded(raw))

    async def many(self, group_ids: list[str]) -> list[DutyGroup | None]:
        if not group_ids:
            return []
        raw = await self.redis.hmget(keys.DUTY_GROUPS, group_ids)
        return [_from_json(decoded(value)) if value else None for value in raw]

    async def credentials(self, group_id: str) -> Credentials:
        raw = await self.redis.hget(keys.DUTY_GROUP_CREDENTIALS, group_id)
        return Credentials(**json.loads(raw)) if raw else Credentials()

    async def with_credentials(self, group_id: str) -> tuple[DutyGroup | None, Credentials]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(keys.DUTY_GROUPS, group_id)
            pipe.hget(keys.DUTY_GROUP_CREDENTIALS, group_id)
            raw, creds = await pipe.execute()
        group = _from_json(decoded(raw)) if raw else None
        return group, Credentials(**json.loads(creds)) if creds else Credentials()

    async def for_warning(
        self, tool: str, grade: str, drill: bool, areas: set[str], org: Organisation, registry: AreaRegistry
    ) -> list[str]:
        """Groups of `tool` that take a warning of this grade whose affected `areas` reach into
        their unit's jurisdiction."""
        out = []
        for group in (await self.all()).values():
            unit = org.find(group.unit)
            if group.tool != tool or unit is None or not group.wants_warning(grade, drill):
                continue
            if any(unit.covers(area, registry) for area in areas):
                out.append(group.id)
        return out

    async def of_unit(self, unit: str, receives: str) -> list[DutyGroup]:
        return [g for g in (await self.all()).values() if g.unit == unit and g.active and receives in g.receives]

    async def save(self, group: DutyGroup, creds: Credentials, *, create: bool) -> DutyGroup | None:
        before = None if create else await self.get(group.id)
        if create and await self.redis.hexists(keys.DUTY_GROUPS, group.id):
            raise Conflict(N_("A duty group with this id exists already."))
        now = _now()
        stored = replace(
            group,
            created=before.created if before else now,
            updated=now,
            deactivated="" if group.active or before is None else before.deactivated,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.DUTY_GROUPS, group.id, json.dumps(stored.as_json(), ensure_ascii=False))
            pipe.hset(keys.DUTY_GROUP_CREDENTIALS, group.id, json.dumps(asdict(creds)))
            await pipe.execute()
        return before

    async def deactivate(self, group_id: str, reason: str) -> bool:
        group, _ = await self.with_credentials(group_id)
        if group is None or not group.active:
            return False
        stopped = replace(group, active=False, deactivated=f"{reason} ({_now()})", updated=_now())
        await self.redis.hset(keys.DUTY_GROUPS, group_id, json.dumps(stopped.as_json(), ensure_ascii=False))
        return True

    async def delete(self, group_id: str) -> DutyGroup:
        before = await self.get(group_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.DUTY_GROUPS, group_id)
            pipe.hdel(keys.DUTY_GROUP_CREDENTIALS, group_id)
            await pipe.execute()
        return before


def _from_json(raw: str) -> DutyGroup:
    data = json.loads(raw)
    data["receives"] = tuple(data.get("receives") or ())
    return DutyGroup(**data)
