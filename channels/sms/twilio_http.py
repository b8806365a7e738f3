"""The twilio client's async HTTP layer on our shared aiohttp session.

It points every *.twilio.com request at TWILIO_API_BASE (a local stand-in in tests and benchmarks),
sets an explicit timeout, and turns HTTP 429 into a TemporaryError that carries Retry-After, which
the twilio library would otherwise drop.
"""

from __future__ import annotations

import base64
import functools
import logging
from urllib.parse import quote_plus, urlsplit

import aiohttp
from twilio.http import AsyncHttpClient
from twilio.http.response import Response

from publisher.dispatch.channel import TemporaryError

log = logging.getLogger(__name__)


def retry_after_seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP-date; fall back to our own backoff


@functools.lru_cache(maxsize=2048)
def _quoted(text: str) -> str:
    return quote_plus(text)


def form_body(data: dict) -> bytes:
    """The form body the twilio client asked for, urlencoded as aiohttp would (doseq).

    A warning's text and callback URL are the same for thousands of recipients: their encoded
    form is cached, which is most of the encoding work per message."""
    pairs = []
    for name, value in data.items():
        for item in value if isinstance(value, list | tuple) else (value,):
            text = str(item)
            pairs.append(f"{_quoted(name)}={_quoted(text) if len(text) > 24 else quote_plus(text)}")
    return "&".join(pairs).encode()


@functools.lru_cache(maxsize=8)
def _basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TwilioHttp(AsyncHttpClient):
    def __init__(self, session: aiohttp.ClientSession, api_base: str, timeout: float = 10.0) -> None:
        super().__init__(log, True, timeout)
        self.session = session
        self.api_base = api_base.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def request(
        self,
        method: str,
        url: str,
        params: dict | None = None,
        data: dict | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the twilio client's interface
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        if data:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return await self.send_form(
            self.target(url), data or None, headers, auth, method, params, timeout, allow_redirects
        )

    def target(self, url: str) -> str:
        """The Twilio URL `url` at TWILIO_API_BASE."""
        parts = urlsplit(url)
        return self.api_base + parts.path + (f"?{parts.query}" if parts.query else "")

    async def send_form(
        self,
        target: str,
        data: dict | None,
        headers: dict[str, str],
        auth: tuple[str, str] | None,
        method: str = "POST",
        params: dict | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the twilio client's interface
        allow_redirects: bool = False,
    ) -> Response:
        """`request` at a URL already pointed at the API base (`target`), with headers of its own."""
        if auth is not None:
            headers["Authorization"] = _basic_auth(*auth)
        async with self.session.request(
            method.upper(),
            target,
            params=params,
            data=form_body(data) if data else None,
            headers=headers,
            timeout=self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout),
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
