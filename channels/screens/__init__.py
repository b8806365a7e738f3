"""Display screens: registry, what each shows (JSON, LED text) and the live hub.

`ScreenOutputs` renders a screen's state once per change: keyed by the screen's record and stamped
with the warnings stream's last id and the area registry's version, valid until the first shown
warning expires, so pollers and the live hub share one rendering per screen.

A screen never goes blank because Redis blinked: while it is away a screen gets its last state,
with `"stale": true` (the kiosk says the connection to the server is lost and shows the last known
warnings, dropping each as it expires), and the screen records last read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from datetime import datetime

from channels.cache import RenderCache, Rendering, redis_away, version_time
from channels.context import ChannelContext
from channels.events import EventFollower
from channels.screens.registry import Screen, ScreenRegistry
from channels.screens.render import CHARSETS, encode_text, screen_state, screen_text, screen_warnings, state_bytes
from foundation.errors import NotFound
from foundation.i18n import N_, locale_for_tag
from publisher.model import Message

__all__ = ["Screen", "ScreenOutputs", "ScreenRegistry"]
log = logging.getLogger(__name__)
# Shown by the kiosk while the server answers from its last state (the server lost Redis).
LOST = N_("Connection to the server lost: showing the last known warnings.")


class ScreenOutputs:
    def __init__(self, ctx: ChannelContext, follower: EventFollower, cache: RenderCache) -> None:
        self.ctx = ctx
        self.follower = follower
        self.cache = cache
        self.registry = ScreenRegistry(ctx.redis)
        self._active: tuple[object, float, list[Message]] | None = None
        self._active_lock = asyncio.Lock()
        self._known: dict[str, Screen] | None = None  # the records last read from the registry

    def now(self) -> float:
        return self.ctx.warnings.now().timestamp()

    async def version(self) -> tuple[str, int]:
        return await self.follower.current(), self.ctx.registry.version

    async def screens(self) -> dict[str, Screen]:
        """Every screen's record; while Redis is away, the records last read (if any were)."""
        if self._known is not None and self.cache.away:
            return self._known
        try:
            self._known = await self.registry.all()
        except Exception as exc:
            if not redis_away(exc) or self._known is None:
                raise
            self.cache.note_away()
        return self._known

    async def screen(self, screen_id: str) -> Screen:
        found = (await self.screens()).get(screen_id)
        if found is None:
            raise NotFound(N_("No screen with this id."))
        return found

    async def heartbeat(self, screen_id: str, via: str, *, force: bool = False) -> None:
        """Record that the screen fetched something; skipped while Redis is away (its state is served)."""
        if self.cache.away:
            return
        try:
            await self.registry.heartbeat(screen_id, via, time.time(), force=force)
        except Exception as exc:
            if not redis_away(exc):
                raise
            self.cache.note_away()
            log.info("heartbeat of screen %s not recorded (redis away: %r)", screen_id, exc)

    async def active(self, version: object) -> list[Message]:
        """The warnings in force, loaded once per version (and again when one of them expires)."""
        async with self._active_lock:
            cached = self._active
            if cached is None or cached[0] != version or self.now() >= cached[1]:
                messages = await self.ctx.warnings.active()
                until = min((m.content.expires.timestamp() for m in messages), default=math.inf)
                self._active = cached = (version, until, messages)
            return cached[2]

    async def shown(self, screen: Screen) -> list[Message]:
        return screen_warnings(await self.active(await self.version()), screen, self.ctx.registry)

    async def state(self, screen: Screen) -> Rendering:
        """The screen's state; while Redis is away its last state, marked stale (or the failure)."""
        key = ("screen", screen)
        found = await self.cache.fresh_or_stale(key, lambda: self._fresh_state(screen))
        if not found.stale:
            return found
        return await self.cache.get(("screen-stale", screen), found.etag, self.now(), lambda: self._stale(found))

    async def _fresh_state(self, screen: Screen) -> Rendering:
        version = await self.version()

        async def render() -> Rendering:
            svc = self.ctx
            messages = screen_warnings(await self.active(version), screen, svc.registry)
            state = screen_state(screen, messages, registry=svc.registry, settings=svc.settings, catalogs=svc.catalogs)
            state["stale"] = False
            for tag, labels in state["labels"].items():
                labels["lost"] = svc.catalogs.text(locale_for_tag(tag) or "en", LOST)
            return Rendering(
                state_bytes(state),
                "application/json; charset=utf-8",
                last_modified=version_time(version[0]),
                valid_until=min((m.content.expires.timestamp() for m in messages), default=math.inf),
            )

        return await self.cache.get(("screen", screen), version, self.now(), render)

    async def _stale(self, last: Rendering) -> Rendering:
        """The last state marked stale, without the warnings that have expired since (no Redis needed)."""
        state = json.loads(last.body)
        now = self.now()
        state["warnings"] = [w for w in state["warnings"] if _expires(w) > now]
        state["stale"] = True
        return Rendering(
            state_bytes(state),
            last.content_type,
            last_modified=last.last_modified,
            valid_until=min((_expires(w) for w in state["warnings"]), default=math.inf),
            stale=True,
        )

    async def text(self, screen: Screen) -> Rendering:
        state = await self.state(screen)  # the text is made from the same state, once per state

        async def render() -> Rendering:
            body = encode_text(screen_text(json.loads(state.body), screen.line_width), screen.encoding)
            return Rendering(
                body,
                f"text/plain; charset={CHARSETS.get(screen.encoding, screen.encoding)}",
                last_modified=state.last_modified,
                valid_until=state.valid_until,
                stale=state.stale,
            )

        return await self.cache.get(("screen-text", screen), state.etag, self.now(), render)


def _expires(warning: dict[str, object]) -> float:
    return datetime.fromisoformat(str(warning["expires"])).timestamp()
