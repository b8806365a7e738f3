"""The Twilio stand-in (tests/standins/twilio.py) in its own process, telling per recipient what it
accepted and when, so a fault scenario can count who was reached, who twice, and when sending
resumed after a fault.

    python -m tests.faults.twilio_counts --port 0 --account ACfaults --token secret   # prints {"port": N}

- `GET /stats`: received, recipients, duplicates (the stand-in's own).
- `GET /counts`: {"counts": {number: accepted messages}, "last_at": wall time of the last one}.
- `GET /first-after?t=<unix seconds>`: {"at": wall time of the first message accepted at or after t, or null}.
- `POST /missing` with a JSON list of numbers: {"missing": how many of them have no message yet}.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field

from aiohttp import web

from tests.standins.twilio import TwilioStandIn, main


@dataclass
class CountingStandIn(TwilioStandIn):
    accepted_at: list[float] = field(default_factory=list)  # wall-clock times, in order of acceptance

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_get("/counts", self.counts_view)
        app.router.add_get("/first-after", self.first_after)
        app.router.add_post("/missing", self.missing)
        return app

    async def create_message(self, request: web.Request) -> web.Response:
        response = await super().create_message(request)
        if response.status == 201:
            self.accepted_at.append(time.time())
        return response

    async def counts_view(self, request: web.Request) -> web.Response:
        last = self.accepted_at[-1] if self.accepted_at else None
        return web.json_response({"counts": dict(self.counts), "last_at": last})

    async def first_after(self, request: web.Request) -> web.Response:
        since = float(request.query["t"])
        index = bisect.bisect_left(self.accepted_at, since)
        return web.json_response({"at": self.accepted_at[index] if index < len(self.accepted_at) else None})

    async def missing(self, request: web.Request) -> web.Response:
        numbers = await request.json()
        return web.json_response({"missing": sum(1 for n in numbers if not self.counts.get(n))})


if __name__ == "__main__":
    main(CountingStandIn)
