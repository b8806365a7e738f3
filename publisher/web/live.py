"""Wiring of the pulled channels into the app: the per-process Outlets and their background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from channels.outlets import Outlets

from .keys import SERVICES

OUTLETS = web.AppKey("outlets", Outlets)


def outlets(request: web.Request) -> Outlets:
    return request.app[OUTLETS]


async def outlets_ctx(app: web.Application) -> AsyncIterator[None]:
    """One stream reader and one screen re-check loop per process, cancelled on shutdown."""
    found = app[OUTLETS] = Outlets.build(app[SERVICES])
    tasks = [
        asyncio.create_task(found.follower.run(), name="warnings-follower"),
        asyncio.create_task(found.hub.tick(), name="screens-tick"),
    ]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def close_streams(app: web.Application) -> None:
    """On shutdown, end every live screen stream so the server need not wait for them."""
    if OUTLETS in app:
        app[OUTLETS].hub.close_all()
