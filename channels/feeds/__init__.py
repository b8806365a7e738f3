"""Feeds: RSS 2.0 and Atom of published warnings, and the CAP Atom index, rendered once per change.

`Feeds` ties the renderers to the cache: a rendering is keyed by the feed and its filters and
stamped with the warnings stream's last id and the area registry's version, so it is made again
exactly when a warning is published, updated, cancelled or expires (or the areas change). While
Redis is away a reader gets the feed's last rendering, marked stale.
"""

from __future__ import annotations

from collections.abc import Hashable

from channels.cache import RenderCache, Rendering, version_time
from channels.context import ChannelContext
from channels.events import EventFollower
from channels.feeds.cap_index import cap_index
from channels.feeds.render import ATOM, CONTENT_TYPES, RSS, warnings_feed
from channels.feeds.select import FeedQuery, matching, published_messages
from publisher.cap_xml import render_cap
from publisher.model import Message

__all__ = ["ATOM", "RSS", "FeedQuery", "Feeds"]


class Feeds:
    def __init__(self, ctx: ChannelContext, follower: EventFollower, cache: RenderCache) -> None:
        self.ctx = ctx
        self.follower = follower
        self.cache = cache

    async def version(self) -> tuple[str, int]:
        return await self.follower.current(), self.ctx.registry.version

    async def warnings(self, kind: str, query: FeedQuery) -> Rendering:
        return await self._cached(("feed", kind, query), CONTENT_TYPES[kind], kind, query)

    async def cap(self, query: FeedQuery) -> Rendering:
        return await self._cached(("cap-index", query), CONTENT_TYPES[ATOM], "cap", query)

    async def _cached(self, key: Hashable, content_type: str, kind: str, query: FeedQuery) -> Rendering:
        return await self.cache.fresh_or_stale(key, lambda: self._fresh(key, content_type, kind, query))

    async def _fresh(self, key: Hashable, content_type: str, kind: str, query: FeedQuery) -> Rendering:
        version = await self.version()

        async def render() -> Rendering:
            svc = self.ctx
            messages = matching(await published_messages(svc.warnings), query, svc.registry)
            registry, settings, catalogs = svc.registry, svc.settings, svc.catalogs
            if kind == "cap":
                body = cap_index(messages, query, registry=registry, settings=settings, catalogs=catalogs)
            else:
                sizes = await self._cap_sizes(messages) if kind == RSS else {}
                body = warnings_feed(
                    kind, messages, query, registry=registry, settings=settings, catalogs=catalogs, cap_sizes=sizes
                )
            return Rendering(body, content_type, last_modified=version_time(version[0]))

        return await self.cache.get(key, version, 0.0, render)

    async def _cap_sizes(self, messages: list[Message]) -> dict[str, int]:
        """Each message's CAP document in bytes, as /cap/{id}.xml serves it: an RSS enclosure says
        its length (RSS 2.0), which a reader uses to decide whether to fetch it."""
        svc, sizes = self.ctx, {}
        for message in messages:
            references = [await svc.warnings.get(ref) for ref in message.references]
            cap = render_cap(
                message,
                references=references,
                registry=svc.registry,
                settings=svc.settings,
                catalogs=svc.catalogs,
                signer=svc.cap_signer,
            )
            sizes[message.id] = len(cap)
        return sizes
