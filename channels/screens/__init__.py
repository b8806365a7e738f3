"""Display screens: registry, what each shows (JSON, LED text) and the live hub.

`ScreenOutputs` renders a screen's state once per change: keyed by the screen's record and stamped
with the warnings stream's last id and the area registry's version, valid until the first shown
warning expires, so pollers and the live hub share one rendering per screen.
"""

from __future__ import annotations

import asyncio
import json
import math

from channels.cache import RenderCache, Rendering, version_time
from channels.context import ChannelContext
from channels.events import EventFollower
from channels.screens.registry import Screen, ScreenRegistry
from channels.screens.render import encode_text, screen_state, screen_text, screen_warnings, state_bytes
from publisher.model import Message

__all__ = ["Screen", "ScreenOutputs", "ScreenRegistry"]


class ScreenOutputs:
    def __init__(self, ctx: ChannelContext, follower: EventFollower, cache: RenderCache) -> None:
        self.ctx = ctx
        self.follower = follower
        self.cache = cache
        self.registry = ScreenRegistry(ctx.redis)
        self._active: tuple[object, float, list[Message]] | None = None
        self._active_lock = asyncio.Lock()

    def now(self) -> float:
        return self.ctx.warnings.now().timestamp()

    async def version(self) -> tuple[str, int]:
        return await self.follower.current(), self.ctx.registry.version

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
        version = await self.version()

        async def render() -> Rendering:
            svc = self.ctx
            messages = screen_warnings(await self.active(version), screen, svc.registry)
            state = screen_state(screen, messages, registry=svc.registry, settings=svc.settings, catalogs=svc.catalogs)
            return Rendering(
                state_bytes(state),
                "application/json; charset=utf-8",
                last_modified=version_time(version[0]),
                valid_until=min((m.content.expires.timestamp() for m in messages), default=math.inf),
            )

        return await self.cache.get(("screen", screen), version, self.now(), render)

    async def text(self, screen: Screen) -> Rendering:
        state = await self.state(screen)  # the text is made from the same state, once per state

        async def render() -> Rendering:
            body = encode_text(screen_text(json.loads(state.body), screen.line_width), screen.encoding)
            return Rendering(
                body,
                f"text/plain; charset={screen.encoding}",
                last_modified=state.last_modified,
                valid_until=state.valid_until,
            )

        return await self.cache.get(("screen-text", screen), state.etag, self.now(), render)
