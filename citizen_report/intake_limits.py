"""Rate limits of intake: fixed-window counters per client IP and per sender (phone or chat).

The intake script counts and checks them in the same round trip as the write; a submission with
photos is counted first (`seen_or_count`), so a flood of uploads is refused before it is decoded.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any, NamedTuple, NoReturn

from citizen_report.model import ReportConfig
from foundation.errors import TooManyRequests
from foundation.i18n import N_
from foundation.store import keys

IP_LIMITED = ("web", "api", "open311")  # channels whose client IP is the reporter's


class RateLimit(NamedTuple):
    key: str  # this subject's counter for the current window
    limit: int
    window: int  # seconds
    resets_in: int  # seconds until the current window ends (the answer's Retry-After)


def rate_limits(config: ReportConfig, epoch: int, client: str, sender: str) -> list[RateLimit]:
    """The counters a submission at `epoch` (s) from `client` (IP, or "") and `sender` (normalised
    phone or chat id, or "") adds to."""
    checks = []
    if client:
        checks.append(("ip", client, *config.per_ip))
    if sender:
        checks.append(("sender", sender, *config.per_sender))
    return [
        RateLimit(keys.report_rate(kind, _digest(subject), epoch // window), limit, window, window - epoch % window)
        for kind, subject, limit, window in checks
    ]


async def seen_or_count(redis: Any, idem_key: str | None, limits: list[RateLimit]) -> str | None:
    """The stored idempotency value if this submission was seen (a replay is not counted, as in the
    intake script); else count it against its limits."""
    if idem_key and (stored := await redis.get(idem_key)):
        return str(stored)
    if not limits:
        return None
    async with redis.pipeline(transaction=False) as pipe:
        for limit in limits:
            pipe.incr(limit.key)
            pipe.expire(limit.key, limit.window)
        counts = (await pipe.execute())[::2]
    for limit, count in zip(limits, counts, strict=True):
        if count > limit.limit:
            too_many(limit)
    return None


def too_many(limit: RateLimit) -> NoReturn:
    raise TooManyRequests(
        N_("Too many reports from you in a short time. Try again in %(minutes)s minutes."),
        minutes=max(1, limit.window // 60),
        retry_after=limit.resets_in,
    )


@lru_cache(maxsize=4096)  # the same few addresses send most reports
def _digest(subject: str) -> str:  # the counter's key never holds the phone number or IP itself
    return hashlib.sha256(subject.encode()).hexdigest()[:24]
