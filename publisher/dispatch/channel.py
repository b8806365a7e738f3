"""The channel interface: every delivery channel renders a warning for one recipient's language,
sends it, and classifies failures so dispatch knows whether to retry, stop or unsubscribe.

Dispatch knows channels only through this interface: their rates, per-address limits and where
their recipients come from are the channel's to say, so a new channel needs no edit of the worker
or the planner. Concrete channels live in the `channels` package and are registered by the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from publisher.model import Message
from publisher.subscribers import Subscriber


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


class RepliesInThreads(Protocol):
    """A channel that can send a warning's update as a reply to the first message of its thread the
    recipient received (Telegram): it says so with `threads_replies = True`."""

    threads_replies: bool

    async def send(self, address: str, rendition: Rendition, *, reference: str, reply_to: str = "") -> SendResult: ...


class Transport(Protocol):
    """How a channel hands one message to its provider (the real client, or the outbox)."""

    async def send(self, address: str, rendition: Rendition, *, reference: str) -> SendResult: ...

    async def close(self) -> None: ...


class Channel(Protocol):
    name: str  # "sms" | "telegram" | "partner"
    outbox_mode: bool  # True when the provider has no credentials
    rate: float  # units (see Rendition.units) per second over the whole deployment: the provider's limit
    max_units: int  # the most units one message can cost (SMS: segments), to size the dispatch watchdog
    per_address_interval_ms: int | None  # at most one message per address per interval (chats), or None
    # True: recipients are residents, found by area in the subscriber index under the channel policy;
    # False: the channel keeps its own recipients (`recipients`), such as partner systems.
    subscriber_channel: bool
    # True: it also sends ready texts from the notification stream (reporters' notices on SMS and
    # Telegram, duty-group pages on the robots); False: warnings only (partner systems).
    takes_notices: bool

    async def recipients(self, message: Message, areas: set[str]) -> list[str]:
        """The addresses a message concerns, for a channel that keeps its own recipients."""

    async def lookup(self, addresses: list[str]) -> list[Subscriber | None]:
        """The recipient record behind each address (None: gone), in order."""

    async def render(self, message: Message, locale: str, *, kind: str | None = None) -> Rendition:
        """The exact text for a recipient reading `locale`; `kind` overrides the message type
        ("expired" for the end-of-validity notice)."""

    def render_text(self, text: str) -> Rendition:
        """A ready text (a reporter's notice) as this channel sends it, with what it costs."""

    async def send(self, address: str, rendition: Rendition, *, reference: str) -> SendResult: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
