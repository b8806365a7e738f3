"""What the three group-robot stand-ins share: a local server that records each post per robot and
answers the tool's own JSON, with failures on demand. Each tool's wire format is in its module
(wecom.py, dingtalk.py, feishu.py), written from the tool's documentation, not from our client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Post:
    robot: str  # the key / access token / hook id in the URL
    body: dict[str, Any]
    query: dict[str, str]
    at: float = field(default_factory=time.time)


@dataclass
class RobotStandIn:
    """Robots are registered with `add(token, secret)`; `fail_next(kind)` makes the next post fail
    with the tool's code for `kind` ("rate_limited", "removed", "busy"), `remove(token)` removes a
    robot for good."""

    port: int = 0
    posts: list[Post] = field(default_factory=list)
    robots: dict[str, str] = field(default_factory=dict)  # token -> signing secret ("" unsigned)
    _plan: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    def add(self, token: str, secret: str = "") -> None:
        self.robots[token] = secret

    def remove(self, token: str) -> None:
        self.robots.pop(token, None)

    def fail_next(self, kind: str, times: int = 1) -> None:
        self._plan.extend([kind] * times)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def texts(self, token: str) -> list[str]:
        return [self.text_of(p.body) for p in self.posts if p.robot == token]

    def text_of(self, body: dict[str, Any]) -> str:
        raise NotImplementedError

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def planned_failure(self) -> str | None:
        return self._plan.pop(0) if self._plan else None

    async def __aenter__(self) -> RobotStandIn:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner:
            await self._runner.cleanup()
