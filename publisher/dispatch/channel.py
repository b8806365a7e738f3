"""The channel interface: every delivery channel renders a warning for one recipient's language,
sends it, and classifies failures so dispatch knows whether to retry, stop or unsubscribe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import jinja2
import redis.asyncio as aioredis

from foundation.areas.registry import AreaRegistry
from foundation.i18n import Catalogs
from foundation.settings import Settings
from publisher.model import Message
from publisher.subscribers import Subscribers


@dataclass
class ChannelContext:
    """What a channel may use; built once per process."""

    settings: Settings
    redis: aioredis.Redis
    env: jinja2.Environment  # the shared Jinja environment (templates/messages/*)
    catalogs: Catalogs
    registry: AreaRegistry
    subscribers: Subscribers


class ChannelError(Exception):
    """Base of the three kinds of failure dispatch distinguishes."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class AuthError(ChannelError):
    """Our credentials are wrong: retrying will not help until an operator fixes them."""


class TemporaryError(ChannelError):
    """Rate limited, provider 5xx, timeout, connection error: retry later."""

    def __init__(self, message: str, *, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentError(ChannelError):
    """This recipient cannot be reached (invalid number, blocked bot): do not retry."""

    def __init__(self, message: str, *, code: str = "", unsubscribe: bool = False) -> None:
        super().__init__(message, code=code)
        self.unsubscribe = unsubscribe


@dataclass(frozen=True)
class Rendition:
    """The exact text one recipient gets, with what it costs on the channel."""

    text: str
    units: int = 1  # rate-limit cost: SMS segments, 1 for chat messages
    encoding: str = ""  # SMS: GSM-7 or UCS-2
    parse_mode: str | None = None
    ttl: int | None = None  # seconds the message stays useful (the warning's remaining validity)


@dataclass(frozen=True)
class SendResult:
    provider_id: str = ""
    status: str = "sent"  # the provider's first status (e.g. Twilio "queued")
    extra: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    """How a channel hands one message to its provider (the real client, or the outbox)."""

    async def send(self, address: str, rendition: Rendition, *, reference: str) -> SendResult: ...

    async def close(self) -> None: ...


class Channel(Protocol):
    name: str  # "sms" | "telegram"
    outbox_mode: bool  # True when the provider has no credentials

    async def render(self, message: Message, locale: str, *, kind: str | None = None) -> Rendition:
        """The exact text for a recipient reading `locale`; `kind` overrides the message type
        ("expired" for the end-of-validity notice)."""

    async def send(self, address: str, rendition: Rendition, *, reference: str) -> SendResult: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
