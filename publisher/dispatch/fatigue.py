"""Alert fatigue, decided per recipient from what they already received of the warning's thread.

What a recipient received is read from the delivery states of the thread's earlier versions (kept
while the warning is in force), so this keeps no record of its own and costs nothing on a thread's
first message; for an update, one round trip per segment.

- A cancellation or the end-of-validity notice always goes out.
- A text identical to one the recipient already received of this thread is not sent again (its
  verify link aside, which names each version).
- At most `per_hour` messages of one thread reach a recipient in an hour (carriers block more than
  about 20 identical SMS an hour, and people stop reading): one more waits until the hour has room,
  and is dropped if a newer version of the warning has been published by then.
- Channels that thread replies (Telegram) send an update as a reply to the first message of the
  thread the recipient received.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from foundation.store import keys
from publisher.dispatch.jobs import shard_of

ALWAYS = frozenset({"cancel", "expired"})  # kinds that go out whatever the recipient had before
HOUR_MS = 3_600_000
RECEIVED = ("sent", "delivered")  # states of a send that reached the provider (receipts may follow)


@dataclass(frozen=True)
class Version:
    """An earlier published version of the thread: its id, publication time and what it read like."""

    message_id: str
    sent_ms: int


@dataclass(frozen=True)
class Received:
    version: Version
    provider_id: str  # the provider's id of that message (Telegram: the message to reply to)


@dataclass(frozen=True)
class Verdict:
    send: bool
    reason: str = ""  # why not: "same_text" | "per_hour"
    wait_seconds: float = 0.0  # per_hour: until the hour has room
    reply_to: str = ""  # the provider id of the first message of the thread the recipient received


async def received_earlier(
    redis: aioredis.Redis, versions: Sequence[Version], channel: str, addresses: Sequence[str]
) -> dict[str, list[Received]]:
    """For each address, the earlier versions it received on `channel`, oldest first."""
    if not versions or not addresses:
        return {}
    by_shard: dict[int, list[str]] = defaultdict(list)
    for address in addresses:
        by_shard[shard_of(address)].append(address)
    asks = [(version, group) for version in versions for group in by_shard.values()]
    async with redis.pipeline(transaction=False) as pipe:
        for version, group in asks:
            pipe.hmget(keys.delivery_state(version.message_id, channel, shard_of(group[0])), group)
        replies = await pipe.execute()
    found: dict[str, list[Received]] = defaultdict(list)
    for (version, group), states in zip(asks, replies, strict=True):
        for address, state in zip(group, states, strict=True):
            kind, _, provider_id = (state or "").partition("|")
            if kind in RECEIVED:
                found[address].append(Received(version, provider_id))
    for got in found.values():
        got.sort(key=lambda r: r.version.sent_ms)
    return dict(found)


def same_words(text: str, message_id: str) -> str:
    """A text as the rule "never the same text twice" compares it: without its version's own id (the
    verify link every message ends with), so an update that says nothing new counts as the same."""
    return text.replace(message_id, "")


def decide(
    kind: str,
    text: str,
    received: Sequence[Received],
    earlier_texts: Sequence[str],
    *,
    now_ms: int,
    per_hour: int,
) -> Verdict:
    """Whether one recipient gets a message of `kind` reading `text`, given what they received of its
    thread (`received`, oldest first, and the texts they got, `earlier_texts`)."""
    reply_to = received[0].provider_id if received else ""
    if kind in ALWAYS or not received:
        return Verdict(True, reply_to=reply_to)
    if text in earlier_texts:
        return Verdict(False, "same_text")
    this_hour = [r.version.sent_ms for r in received if r.version.sent_ms > now_ms - HOUR_MS]
    if len(this_hour) >= per_hour:
        room_at = sorted(this_hour)[len(this_hour) - per_hour] + HOUR_MS  # when the oldest that counts leaves the hour
        return Verdict(False, "per_hour", wait_seconds=max(1.0, (room_at - now_ms) / 1000))
    return Verdict(True, reply_to=reply_to)
