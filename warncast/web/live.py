"""Wiring of the pulled channels into the app: the per-process Outlets and their background tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from foundation.supervisor import Loop
from warncast.app_keys import SERVICES, SUPERVISOR
from warncast.outlets import Outlets

OUTLETS = web.AppKey("outlets", Outlets)


def outlets(request: web.Request) -> Outlets:
    return request.app[OUTLETS]


async def outlets_ctx(app: web.Application) -> AsyncIterator[None]:
    """One stream reader and one screen re-check loop per process; they join the app's supervised
    background loops, which are cancelled and awaited on shutdown."""
    found = app[OUTLETS] = Outlets.build(app[SERVICES].channel_context)
    app[SUPERVISOR].add(Loop("warnings-follower", found.follower.run), Loop("screens-tick", found.hub.tick))
    yield


async def close_streams(app: web.Application) -> None:
    """On shutdown, end every live screen stream so the server need not wait for them."""
    if OUTLETS in app:
        app[OUTLETS].hub.close_all()
