"""Telegram's errors, classified as the dispatch distinguishes them (auth / temporary / permanent)."""

from __future__ import annotations

from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut

from publisher.dispatch.channel import AuthError, ChannelError, PermanentError, TemporaryError


def classify(exc: TelegramError) -> ChannelError:
    if isinstance(exc, RetryAfter):
        seconds = exc._retry_after.total_seconds()  # the public attribute warns about its type
        return TemporaryError(f"Telegram flood control: {exc}", code="429", retry_after=seconds)
    if isinstance(exc, Forbidden):
        return PermanentError(f"Telegram: {exc}", code="403", unsubscribe=True)  # blocked by the user
    if isinstance(exc, InvalidToken):
        return AuthError(f"Telegram: {exc}", code="401")
    if isinstance(exc, BadRequest):
        return PermanentError(f"Telegram: {exc}", code="400", unsubscribe="chat not found" in str(exc).lower())
    if isinstance(exc, TimedOut | NetworkError):
        return TemporaryError(f"Telegram unreachable: {exc}")
    return TemporaryError(f"Telegram: {exc}")
