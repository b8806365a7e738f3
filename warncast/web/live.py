"""Wiring of the pulled channels into the app: the per-process Outlets and their background tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from channels.events import BLOCK_MS, RETRY_SECONDS
from channels.screens.hub import TICK_SECONDS
from foundation.retry import RetryPolicy
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
    # Each read returns within BLOCK_MS, each re-check comes every TICK_SECONDS: silent for a few of
    # those, the loop is stuck. Failed, both try again every RETRY_SECONDS (not the supervisor's
    # growing back-off): live screens are brought up to date as soon as Redis is back.
    again = RetryPolicy(base=RETRY_SECONDS, cap=RETRY_SECONDS)
    app[SUPERVISOR].add(
        Loop("warnings-follower", found.follower.run, within=4 * BLOCK_MS / 1000, restart=again),
        Loop("screens-tick", found.hub.tick, within=4 * TICK_SECONDS, restart=again),
    )
    yield


async def close_streams(app: web.Application) -> None:
    """On shutdown, end every live screen and page stream so the server need not wait for them."""
    if OUTLETS in app:
        app[OUTLETS].hub.close_all()
        app[OUTLETS].pages.close_all()
