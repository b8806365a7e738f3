"""Typed application keys, declared together."""

from __future__ import annotations

import asyncio

from aiohttp import web

from foundation.settings import Settings
from warncast.services import Services

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
BACKGROUND = web.AppKey("background", list[asyncio.Task[None]])
