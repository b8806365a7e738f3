"""The Twilio stand-in of the benchmarks: tests/standins/twilio.py's own, listening on several ports
of 127.0.0.1 at once (one per dispatch process, so it can say how many messages each process had
accepted) and remembering when it accepted the first and the last message of a window.

    .venv/bin/python benchmarks/standin.py --ports 3 --account ACbench --token secret   # prints {"ports": [...]}

- `GET /stats`: received, recipients, duplicates (the stand-in's own, since it started), and of the
  current window: window_received, window_recipients, window_duplicates, per_port {port: messages
  accepted}, first_at and last_at (wall-clock time of the first and the last accepted message, or
  null);
- `GET /progress`: the window's three counts and last_at only (cheap: for polling);
- `POST /window`: start a new window (its counts and times from zero).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.standins.twilio import TwilioStandIn  # noqa: E402


@dataclass
class BenchStandIn(TwilioStandIn):
    per_port: Counter[int] = field(default_factory=Counter)
    window_counts: Counter[str] = field(default_factory=Counter)
    window_received: int = 0
    window_duplicates: int = 0
    first_at: float | None = None
    last_at: float | None = None

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/window", self.window)
        app.router.add_get("/progress", self.progress)
        return app

    async def create_message(self, request: web.Request) -> web.Response:
        response = await super().create_message(request)
        if response.status == 201:
            now = time.time()
            if self.first_at is None:
                self.first_at = now
            self.last_at = now
            sockname = request.transport.get_extra_info("sockname") if request.transport else None
            self.per_port[sockname[1] if sockname else 0] += 1
            form = await request.post()  # parsed once: aiohttp keeps it on the request
            to = str(form.get("To", ""))
            self.window_received += 1
            self.window_duplicates += 1 if self.window_counts[to] else 0
            self.window_counts[to] += 1
        return response

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "received": sum(self.counts.values()),
                "recipients": len(self.counts),
                "duplicates": sum(c - 1 for c in self.counts.values() if c > 1),
                **self._window(),
                "per_port": {str(port): n for port, n in self.per_port.items()},
                "first_at": self.first_at,
                "last_at": self.last_at,
            }
        )

    def _window(self) -> dict[str, int]:
        return {
            "window_received": self.window_received,
            "window_recipients": len(self.window_counts),
            "window_duplicates": self.window_duplicates,
        }

    async def progress(self, request: web.Request) -> web.Response:
        """The window's counts only: cheap enough to poll."""
        return web.json_response({**self._window(), "last_at": self.last_at})

    async def window(self, request: web.Request) -> web.Response:
        self.per_port.clear()
        self.window_counts.clear()
        self.window_received = self.window_duplicates = 0
        self.first_at = self.last_at = None
        return web.json_response({"ok": True})


async def serve(ports: int, account: str, token: str) -> None:
    standin = BenchStandIn(account, token, record_bodies=False)
    runner = web.AppRunner(standin.app(), access_log=None)
    await runner.setup()
    bound = []
    for _ in range(ports):
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        bound.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    print(json.dumps({"ports": bound}), flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", type=int, default=1)
    parser.add_argument("--account", default="ACtest")
    parser.add_argument("--token", default="secret")
    args = parser.parse_args()
    asyncio.run(serve(args.ports, args.account, args.token))  # the loop tests/standins/twilio.py runs on


if __name__ == "__main__":
    main()
