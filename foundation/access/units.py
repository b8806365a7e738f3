"""Issuing units: who acts for which hazards where (分类管理).

A unit is a release centre, a department or a sub-centre, with a parent, a jurisdiction (area
codes; it covers every area under them) and the event types it may issue. The registry is one
Redis hash (unit id -> JSON) that an admin edits; with nothing configured there is one implicit
release centre, built from the settings, with the whole city and every event type, so a
single-office deployment behaves as it always did.

The registry lives in the foundation because both domains ask it (the publisher: may this unit
issue this warning; citizen reporting: which unit does this incident go to) and neither may import
the other. It knows no domain: event types are opaque codes here, checked against the vocabulary
the caller passes in.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from foundation.areas.registry import AreaRegistry
from foundation.errors import Conflict, FieldError, NotFound, ValidationFailed
from foundation.i18n import N_, Localized
from foundation.settings import Settings
from foundation.store import keys
from foundation.store.streams import decoded, decoded_hash

CENTRE, DEPARTMENT, SUBCENTRE = "centre", "department", "subcentre"
KINDS = (CENTRE, DEPARTMENT, SUBCENTRE)
KIND_NAMES = {CENTRE: N_("release centre"), DEPARTMENT: N_("department"), SUBCENTRE: N_("sub-centre")}
IMPLICIT_ID = "centre"
UNIT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
CODE = re.compile(r"^\d{6}$")  # 3-digit sector + 3-digit unit of a GB/T 35965.1 identifier
FIELDS = {"id", "names", "kind", "parent", "areas", "events", "sender", "code", "contacts"}
NAME_TAGS = ("zh-CN", "en")
MAX_AREAS, MAX_CONTACTS = 200, 20


@dataclass(frozen=True)
class Unit:
    id: str
    names: dict[str, str]  # BCP 47 tag -> name ("zh-CN" and "en")
    kind: str
    parent: str = ""
    areas: tuple[str, ...] = ()  # jurisdiction; empty: the whole city (the release centre)
    events: tuple[str, ...] = ()  # event types it may issue; empty: every type
    sender: str = ""  # CAP <sender>
    code: str = ""  # 6 digits of the GB/T 35965.1 identifier
    contacts: tuple[dict[str, str], ...] = field(default=())  # duty contacts: name, phone (staff only)

    def name_in(self, tag: str) -> str:
        return self.names.get(tag) or self.names.get("en") or next(iter(self.names.values()), self.id)

    @property
    def label(self) -> Localized:
        """The unit's name as an error parameter, shown in the reader's language."""
        return Localized.names(self.names)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["areas"], data["events"], data["contacts"] = list(self.areas), list(self.events), list(self.contacts)
        return data

    def may_issue(self, event: str) -> bool:
        return not self.events or event in self.events

    def covers(self, area: str, registry: AreaRegistry) -> bool:
        """Whether `area` lies inside the jurisdiction (one of its areas or under one)."""
        if not self.areas:
            return True
        return area in self.areas or any(a in self.areas for a in registry.ancestors(area))

    def identifier_prefix(self, id_prefix: str) -> str:
        """The 14 digits of its identifiers: the area code of its jurisdiction (the configured one
        for a unit of several areas or of the whole city), its 6-digit code, the configured last two."""
        area = self.areas[0] if len(self.areas) == 1 and len(self.areas[0]) == 6 else id_prefix[:6]
        return f"{area}{self.code or id_prefix[6:12]}{id_prefix[12:]}"


def implicit_centre(settings: Settings) -> Unit:
    """The one release centre of a deployment that configured no units."""
    name = settings.sender_name
    return Unit(
        id=IMPLICIT_ID,
        names={"zh-CN": name, "en": name},
        kind=CENTRE,
        sender=settings.sender,
        code=settings.id_prefix[6:12],
    )


@dataclass(frozen=True)
class Organisation:
    """Every unit at one moment, with the questions asked of the tree."""

    units: dict[str, Unit]
    root: Unit
    configured: bool = True

    def get(self, unit_id: str) -> Unit:
        """A user's unit; "" (users created before units existed) is the release centre."""
        if not unit_id:
            return self.root
        found = self.units.get(unit_id)
        if found is None:
            raise NotFound(N_("No unit with this id."))
        return found

    def find(self, unit_id: str) -> Unit | None:
        return self.root if not unit_id else self.units.get(unit_id)

    def ancestors(self, unit_id: str) -> list[Unit]:
        out: list[Unit] = []
        unit = self.units.get(unit_id)
        while unit and unit.parent and unit.parent in self.units and len(out) < len(self.units):
            unit = self.units[unit.parent]
            out.append(unit)
        return out

    def within(self, unit_id: str, scope_id: str) -> bool:
        """Whether `unit_id` is `scope_id` or a unit under it."""
        unit_id, scope_id = unit_id or self.root.id, scope_id or self.root.id
        return unit_id == scope_id or any(u.id == scope_id for u in self.ancestors(unit_id))

    def under(self, scope_id: str) -> list[Unit]:
        return [u for u in self.units.values() if self.within(u.id, scope_id)]

    def responsible(self, events: list[str], area: str | None, registry: AreaRegistry) -> Unit:
        """The unit an incident of one of `events` (codes, most likely first) in `area` goes to:
        the unit that names the event type among its own and covers the area, the most local one
        first (classified management: the specialist department); else the most local unit for
        every event type that covers the area (a district centre); else the release centre."""
        for event in events:
            found = self._most_local([u for u in self.units.values() if event in u.events], area, registry)
            if found:
                return found
        return self._most_local([u for u in self.units.values() if not u.events], area, registry) or self.root

    def _most_local(self, units: list[Unit], area: str | None, registry: AreaRegistry) -> Unit | None:
        inside = [u for u in units if not area or u.covers(area, registry)]
        if not inside:
            return None
        return max(inside, key=lambda u: max((len(registry.ancestors(a)) + 1 for a in u.areas), default=0))


def parse_unit(body: Any, registry: AreaRegistry, events: set[str], *, unit_id: str | None = None) -> Unit:
    """Validate one unit from the API or the console; every problem names its field."""
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "type", N_("The body must be a JSON object."))])
    errors: list[FieldError] = []

    def add(name: str, code: str, message: str, **params: object) -> None:
        errors.append(FieldError(name, code, message, params))

    for unknown in sorted(set(body) - FIELDS - {"links", "kind_name"}):
        add(unknown, "unknown_field", N_("Unknown field."))
    uid = unit_id if unit_id is not None else body.get("id")
    if not isinstance(uid, str) or not UNIT_ID.match(uid):
        add("id", "format", N_("Use 1 to 40 lower-case letters, digits, hyphens and underscores."))
        uid = ""
    names = body.get("names")
    clean_names: dict[str, str] = {}
    for tag in NAME_TAGS:
        value = names.get(tag) if isinstance(names, dict) else None
        if not isinstance(value, str) or not value.strip() or len(value) > 80:
            add(f"names.{tag}", "required", N_("Give the name in Chinese and English (at most 80 characters)."))
        else:
            clean_names[tag] = value.strip()
    kind = body.get("kind")
    if kind not in KINDS:
        add("kind", "choice", N_("Choose one of: %(choices)s."), choices=", ".join(KINDS))
    parent = body.get("parent") or ""
    if not isinstance(parent, str):
        add("parent", "type", N_("Must be text."))
        parent = ""
    areas = _codes(add, "areas", body.get("areas", []), MAX_AREAS)
    unknown_areas = [a for a in areas if registry.get(a) is None]
    if unknown_areas:
        add("areas", "unknown", N_("Unknown area codes: %(codes)s."), codes=", ".join(unknown_areas[:5]))
    unit_events = _codes(add, "events", body.get("events", []), len(events) or 1)
    unknown_events = [e for e in unit_events if e not in events]
    if unknown_events:
        add("events", "unknown", N_("Unknown event types: %(codes)s."), codes=", ".join(unknown_events[:5]))
    sender = body.get("sender", "")
    if not isinstance(sender, str) or not sender or len(sender) > 120 or any(c in sender for c in " ,<&\"'"):
        add("sender", "format", N_("Give the CAP sender: an address without spaces, commas or <&."))
        sender = ""
    code = body.get("code", "")
    if not isinstance(code, str) or not CODE.match(code):
        add("code", "format", N_("Give the 6-digit sector and unit code of the identifier."))
        code = ""
    contacts = body.get("contacts", [])
    clean_contacts: list[dict[str, str]] = []
    if not isinstance(contacts, list) or len(contacts) > MAX_CONTACTS:
        add("contacts", "type", N_("Give a list of at most %(max)s contacts."), max=MAX_CONTACTS)
        contacts = []
    for i, contact in enumerate(contacts):
        name = contact.get("name") if isinstance(contact, dict) else None
        phone = contact.get("phone", "") if isinstance(contact, dict) else None
        if not isinstance(name, str) or not name.strip() or len(name) > 80:
            add(f"contacts[{i}].name", "required", N_("This field is required."))
        elif not isinstance(phone, str) or len(phone) > 40:
            add(f"contacts[{i}].phone", "format", N_("Must be text of at most %(max)s characters."), max=40)
        else:
            clean_contacts.append({"name": name.strip(), "phone": phone.strip()})
    if errors:
        raise ValidationFailed(errors)
    return Unit(
        id=uid,
        names=clean_names,
        kind=str(kind),
        parent=parent,
        areas=tuple(dict.fromkeys(areas)),
        events=tuple(dict.fromkeys(unit_events)),
        sender=sender,
        code=code,
        contacts=tuple(clean_contacts),
    )


def _codes(add: Any, name: str, value: Any, limit: int) -> list[str]:
    if not isinstance(value, list) or len(value) > limit or not all(isinstance(v, str) for v in value):
        add(name, "type", N_("Give a list of at most %(max)s codes."), max=limit)
        return []
    return value


def check_tree(units: dict[str, Unit], registry: AreaRegistry) -> None:
    """The rules between units: one release centre at the top, parents that exist without
    cycles, a child's jurisdiction inside its parent's, codes unique."""
    errors: list[FieldError] = []

    def add(unit: Unit, name: str, code: str, message: str) -> None:
        errors.append(FieldError(f"{unit.id}.{name}", code, message))

    roots = [u for u in units.values() if not u.parent]
    if units and (len(roots) != 1 or roots[0].kind != CENTRE):
        errors.append(FieldError("parent", "root", N_("Exactly one unit, a release centre, has no parent.")))
    codes: dict[str, str] = {}
    for unit in units.values():
        if unit.parent and unit.parent not in units:
            add(unit, "parent", "unknown", N_("Choose a parent from the units."))
            continue
        seen, current = {unit.id}, unit
        while current.parent and current.parent in units:
            if current.parent in seen:
                add(unit, "parent", "cycle", N_("A unit cannot be under itself."))
                break
            seen.add(current.parent)
            current = units[current.parent]
        if unit.parent:
            parent = units[unit.parent]
            outside = [a for a in unit.areas if not parent.covers(a, registry)]
            if outside or (parent.areas and not unit.areas):
                add(unit, "areas", "outside", N_("A unit's jurisdiction lies inside its parent's."))
        if unit.code in codes:
            add(unit, "code", "taken", N_("Another unit has this code."))
        codes[unit.code] = unit.id
    if errors:
        raise ValidationFailed(errors)


async def stored_units(redis: aioredis.Redis) -> dict[str, Unit]:
    """The configured units (empty: none configured), for readers that need no implicit centre."""
    raw = decoded_hash(await redis.hgetall(keys.UNITS))
    return {uid: _from_json(value) for uid, value in sorted(raw.items())}


def organisation_of(units: dict[str, Unit], settings: Settings) -> Organisation:
    root = next((u for u in units.values() if not u.parent and u.kind == CENTRE), None)
    if root is None:
        centre = implicit_centre(settings)
        return Organisation({centre.id: centre}, centre, configured=False)
    return Organisation(units, root)


class Units:
    """The registry in Redis (one hash), read whole: a city has tens or hundreds of units."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings

    async def organisation(self) -> Organisation:
        return organisation_of(await stored_units(self.redis), self.settings)

    async def get(self, unit_id: str) -> Unit:
        raw = await self.redis.hget(keys.UNITS, unit_id) if UNIT_ID.match(unit_id) else None
        if raw is None:
            org = await self.organisation()
            if not org.configured and unit_id == org.root.id:
                return org.root
            raise NotFound(N_("No unit with this id."))
        return _from_json(decoded(raw))

    async def save(self, unit: Unit, registry: AreaRegistry, *, create: bool) -> Unit | None:
        """Store one unit after checking the tree it makes; returns the unit it replaced."""
        return await self._change(registry, unit.id, unit, create=create)

    async def delete(self, unit_id: str, registry: AreaRegistry) -> Unit:
        before = await self._change(registry, unit_id, None, create=False)
        assert before is not None
        return before

    async def replace_all(self, units: list[Unit], registry: AreaRegistry) -> None:
        """Load a whole set (the demo city), checked as one tree."""
        by_id = {u.id: u for u in units}
        check_tree(by_id, registry)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.UNITS)
            pipe.hset(keys.UNITS, mapping={u.id: json.dumps(u.as_json(), ensure_ascii=False) for u in units})
            await pipe.execute()

    async def _change(self, registry: AreaRegistry, unit_id: str, unit: Unit | None, *, create: bool) -> Unit | None:
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(keys.UNITS)
                    raw = decoded_hash(await pipe.hgetall(keys.UNITS))
                    units = {uid: _from_json(value) for uid, value in raw.items()}
                    before = units.get(unit_id)
                    if create and before is not None:
                        raise Conflict(N_("A unit with this id exists already."))
                    if not create and before is None:
                        raise NotFound(N_("No unit with this id."))
                    if unit is None:
                        if any(u.parent == unit_id for u in units.values()):
                            raise Conflict(N_("Move or delete the units under this one first."))
                        del units[unit_id]
                    else:
                        units[unit_id] = unit
                    check_tree(units, registry)
                    pipe.multi()
                    if unit is None:
                        pipe.hdel(keys.UNITS, unit_id)
                    else:
                        pipe.hset(keys.UNITS, unit_id, json.dumps(unit.as_json(), ensure_ascii=False))
                    await pipe.execute()
                    return before
                except WatchError:
                    continue


def _from_json(raw: str) -> Unit:
    data = json.loads(raw)
    data["areas"] = tuple(data.get("areas") or ())
    data["events"] = tuple(data.get("events") or ())
    data["contacts"] = tuple(data.get("contacts") or ())
    return Unit(**data)
