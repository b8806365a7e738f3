"""A local stand-in for Twilio's Messages API: answers like Twilio, records what it got, and fails
on demand (429 with Retry-After, 5xx, error 21610 and other codes, or hanging past the timeout).

    async with TwilioStandIn("ACtest", "secret") as twilio:  # twilio.url -> TWILIO_API_BASE
        twilio.fail_next(2, "429")
        twilio.fail_for("+8613800000001", "21610")

Run standalone for benchmarks: `python -m tests.standins.twilio --port 0` prints the port.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate

from aiohttp import web

ERRORS = {
    "429": (429, 20429, "Too Many Requests"),
    "500": (500, 20500, "Internal Server Error"),
    "503": (503, 20503, "Service Unavailable"),
    "21610": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "21211": (400, 21211, "The 'To' number is not a valid phone number."),
    "auth": (401, 20003, "Authenticate"),
}


@dataclass
class Sent:
    to: str
    body: str
    fields: dict[str, str]
    sid: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class TwilioStandIn:
    account_sid: str = "ACtest"
    auth_token: str = "secret"
    port: int = 0
    messages: list[Sent] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    record_bodies: bool = True
    _plan: list[str] = field(default_factory=list)  # failures for the next requests
    _per_number: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 30.0
    retry_after: str = "1"

    def fail_next(self, count: int, kind: str) -> None:
        self._plan.extend([kind] * count)

    def fail_for(self, number: str, kind: str) -> None:
        self._per_number[number] = kind

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.create_message)
        app.router.add_get("/stats", self.stats)
        return app

    async def create_message(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != expected or request.match_info["sid"] != self.account_sid:
            return self._error("auth")
        form = await request.post()
        to = str(form.get("To", ""))
        kind = self._plan.pop(0) if self._plan else self._per_number.get(to)
        if kind == "hang":
            await asyncio.sleep(self.hang_seconds)
        elif kind:
            return self._error(kind)
        sid = "SM" + secrets.token_hex(16)
        self.counts[to] += 1
        if self.record_bodies:
            self.messages.append(Sent(to, str(form.get("Body", "")), {k: str(v) for k, v in form.items()}, sid))
        now = formatdate(usegmt=True)
        return web.json_response(
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": form.get("Body", ""),
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "queued",
                "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
                "to": to,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
            status=201,
        )

    def _error(self, kind: str) -> web.Response:
        status, code, message = ERRORS[kind]
        headers = {"Retry-After": self.retry_after} if status == 429 else {}
        return web.json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
            headers=headers,
        )

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "received": sum(self.counts.values()),
                "recipients": len(self.counts),
                "duplicates": sum(c - 1 for c in self.counts.values() if c > 1),
            }
        )

    async def __aenter__(self) -> TwilioStandIn:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)  # a hung request ends the test
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


async def _serve(kind: type[TwilioStandIn], port: int, account: str, token: str) -> None:
    async with kind(account, token, port=port, record_bodies=False) as standin:
        print(json.dumps({"port": standin.port}), flush=True)
        await asyncio.Event().wait()


def main(kind: type[TwilioStandIn] = TwilioStandIn) -> None:
    """Serve a stand-in in its own process (benchmarks, fault tests); prints its port as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--account", default="ACtest")
    parser.add_argument("--token", default="secret")
    args = parser.parse_args()
    asyncio.run(_serve(kind, args.port, args.account, args.token))


if __name__ == "__main__":
    main()
