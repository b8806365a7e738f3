"""The twilio client's async HTTP layer on our shared aiohttp session.

It points every *.twilio.com request at TWILIO_API_BASE (a local stand-in in tests and benchmarks),
sets an explicit timeout, and turns HTTP 429 into a TemporaryError that carries Retry-After, which
the twilio library would otherwise drop.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlsplit

import aiohttp
from twilio.http import AsyncHttpClient
from twilio.http.response import Response

from ..base import TemporaryError

log = logging.getLogger(__name__)


def retry_after_seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP-date; fall back to our own backoff


class TwilioHttp(AsyncHttpClient):  # type: ignore[misc]
    def __init__(self, session: aiohttp.ClientSession, api_base: str, timeout: float = 10.0) -> None:
        super().__init__(log, True, timeout)
        self.session = session
        self.api_base = api_base.rstrip("/")

    async def request(
        self,
        method: str,
        url: str,
        params: dict | None = None,
        data: dict | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        parts = urlsplit(url)
        target = self.api_base + parts.path + (f"?{parts.query}" if parts.query else "")
        headers = dict(headers or {})
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with self.session.request(
            method.upper(),
            target,
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            allow_redirects=allow_redirects,
        ) as resp:
            text = await resp.text()
            if resp.status == 429:
                raise TemporaryError(
                    "Twilio rate limit (429)",
                    code="20429",
                    retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
                )
            return Response(resp.status, text, resp.headers)

    async def close(self) -> None:
        return None  # the session belongs to the app
