"""The display-screen registry and heartbeats.

A screen is a kiosk browser or an LED board in a street, station or school. Its record says where it
is, which area's warnings it shows, in which languages and layout, and how its text feed is
encoded. Records live in one Redis hash; each process keeps a copy for a couple of seconds so
that a screen poll costs no Redis round trip. Heartbeats (last seen, and how) are written at most
every few seconds per screen and process.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

from foundation.areas.registry import AreaRegistry
from foundation.errors import FieldError, NotFound, ValidationFailed
from foundation.i18n import N_, SUPPORTED
from foundation.store import keys
from foundation.store.streams import decoded_hash
from publisher.validation import Collector, clean_text

SCREEN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
ORIENTATIONS = ("landscape", "portrait")
TEXT_SIZES = ("normal", "large", "huge")
ENCODINGS = ("utf-8", "gb18030", "gb2312", "ascii")
LANGUAGES = tuple(SUPPORTED.values())
ONLINE_SECONDS, STALE_SECONDS = 90, 600  # a live screen pings every 20 s; a poller every 15-60 s
CACHE_SECONDS, HEARTBEAT_EVERY = 2.0, 5.0
STATUS_NAMES = {"online": N_("online"), "stale": N_("stale"), "offline": N_("offline")}


@dataclass(frozen=True)
class Screen:
    id: str
    name: str
    area: str
    location: str = ""
    languages: tuple[str, ...] = LANGUAGES
    orientation: str = "landscape"
    text_size: str = "large"
    line_width: int = 32  # columns of the LED text feed (a CJK character takes two)
    encoding: str = "utf-8"  # of the LED text feed
    rotate_seconds: int = 8  # kiosk: how long each language / warning stays up
    show_map: bool = False  # kiosk: a small map of the warnings' areas beside the text

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["languages"] = list(self.languages)
        return data


def parse_screen(body: Any, registry: AreaRegistry, *, screen_id: str | None = None) -> Screen:
    """Validate an API or console body into a Screen; every problem is named by its field."""
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "type", N_("The body must be a JSON object."))])
    errs = Collector()
    sid = screen_id if screen_id is not None else body.get("id")
    if not isinstance(sid, str) or not SCREEN_ID.match(sid):
        errs.add("id", "format", N_("Use 1 to 40 lower-case letters, digits and hyphens."))
        sid = ""
    name = clean_text(errs, "name", body.get("name"), 80, required=True)
    location = clean_text(errs, "location", body.get("location", ""), 160, required=False)
    area = body.get("area")
    if not isinstance(area, str) or registry.get(area) is None:
        errs.add("area", "unknown", N_("Choose an area from the registry."))
        area = ""
    languages = body.get("languages", list(LANGUAGES))
    if (
        not isinstance(languages, list)
        or not languages
        or any(lang not in LANGUAGES for lang in languages)
        or len(set(languages)) != len(languages)
    ):
        errs.add("languages", "choice", N_("Choose one or more of: %(choices)s."), choices=", ".join(LANGUAGES))
    choices = {"orientation": ORIENTATIONS, "text_size": TEXT_SIZES, "encoding": ENCODINGS}
    picked = {}
    for field, allowed in choices.items():
        picked[field] = body.get(field, Screen.__dataclass_fields__[field].default)
        if picked[field] not in allowed:
            errs.add(field, "choice", N_("Choose one of: %(choices)s."), choices=", ".join(allowed))
    numbers = {"line_width": (8, 200), "rotate_seconds": (3, 120)}
    for field, (low, high) in numbers.items():
        value = body.get(field, Screen.__dataclass_fields__[field].default)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            errs.add(field, "range", N_("Must be a whole number from %(low)s to %(high)s."), low=low, high=high)
        picked[field] = value
    show_map = body.get("show_map", False)
    if not isinstance(show_map, bool):
        errs.add("show_map", "type", N_("Must be true or false."))
    if errs.errors:
        raise ValidationFailed(errs.errors)
    return Screen(
        id=sid, name=name, area=area, location=location, languages=tuple(languages), show_map=show_map, **picked
    )


def screen_status(seen_at: float | None, now: float) -> str:
    if seen_at is None:
        return "offline"
    age = now - seen_at
    return "online" if age <= ONLINE_SECONDS else "stale" if age <= STALE_SECONDS else "offline"


class ScreenRegistry:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._cache: dict[str, Screen] = {}
        self._loaded = -1.0
        self._beats: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def all(self, *, fresh: bool = False) -> dict[str, Screen]:
        if fresh or time.monotonic() - self._loaded > CACHE_SECONDS:
            asked = time.monotonic()
            async with self._lock:  # a thousand screens reconnecting at once make one read
                if self._loaded < asked if fresh else time.monotonic() - self._loaded > CACHE_SECONDS:
                    raw = decoded_hash(await self.redis.hgetall(keys.SCREENS))
                    self._cache = {sid: _from_json(value) for sid, value in raw.items()}
                    self._loaded = time.monotonic()
        return self._cache

    async def get(self, screen_id: str) -> Screen:
        screen = (await self.all()).get(screen_id)
        if screen is None:
            raise NotFound(N_("No screen with this id."))
        return screen

    async def save(self, screen: Screen, *, create: bool) -> bool:
        """Store a screen; False when creating an id that exists (nothing changed)."""
        payload = json.dumps(screen.as_json(), ensure_ascii=False)
        if create:
            stored = bool(await self.redis.hsetnx(keys.SCREENS, screen.id, payload))
        else:
            stored = bool(await self.redis.hexists(keys.SCREENS, screen.id))
            if stored:
                await self.redis.hset(keys.SCREENS, screen.id, payload)
        await self.all(fresh=True)
        return stored

    async def delete(self, screen_id: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.SCREENS, screen_id)
            pipe.hdel(keys.SCREENS_SEEN, screen_id)
            removed, _ = await pipe.execute()
        await self.all(fresh=True)
        return bool(removed)

    async def heartbeat(self, screen_id: str, via: str, now: float, *, force: bool = False) -> None:
        """Record that the screen fetched something; throttled per process."""
        if not force and now - self._beats.get(screen_id, 0.0) < HEARTBEAT_EVERY:
            return
        self._beats[screen_id] = now
        await self.redis.hset(keys.SCREENS_SEEN, screen_id, json.dumps({"at": now, "via": via}))

    async def last_seen(self) -> dict[str, dict[str, Any]]:
        raw = decoded_hash(await self.redis.hgetall(keys.SCREENS_SEEN))
        return {sid: json.loads(value) for sid, value in raw.items()}


def _from_json(raw: str) -> Screen:
    data = json.loads(raw)
    data["languages"] = tuple(data.get("languages") or LANGUAGES)
    return Screen(**data)
