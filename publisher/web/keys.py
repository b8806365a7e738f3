"""Typed application keys, declared together."""

from __future__ import annotations

import asyncio

import jinja2
from aiohttp import web

from ..services import Services
from ..settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
JINJA = web.AppKey("jinja", jinja2.Environment)
BACKGROUND = web.AppKey("background", list[asyncio.Task[None]])
