"""Delivery receipts (Twilio StatusCallback): move a recipient forward, never back.

Callbacks can arrive out of order and more than once; only sent → delivered / failed counts."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from foundation.store import keys
from foundation.store.scripts import script
from publisher.dispatch.jobs import shard_of
from publisher.subscribers import Subscribers

FINAL = {"delivered": "delivered", "undelivered": "failed", "failed": "failed"}

# Change the state only from `sent|…`, so a repeated or late callback does nothing.
FORWARD = script("receipt_forward")


async def record_receipt(
    redis: aioredis.Redis,
    subscribers: Subscribers,
    plan_id: str,
    address: str,
    status: str,
    error_code: str = "",
    channel: str = "sms",
) -> bool:
    """`plan_id` comes from the signed callback URL, `address` from Twilio's `To`."""
    outcome = FINAL.get(status.lower())
    if not plan_id or not address or outcome is None:
        return False
    state_key = keys.delivery_state(plan_id[:80], channel, shard_of(address))
    value = f"delivered|{status}" if outcome == "delivered" else f"failed|{error_code or status}"
    moved = await FORWARD(redis, keys=[state_key], args=[address, value])
    if moved:
        await redis.hincrby(keys.delivery_stats(plan_id), f"{channel}.{outcome}", 1)
        if (keep_ms := await redis.pttl(state_key)) > 0:  # the stats live as long as the state they count
            await redis.pexpire(keys.delivery_stats(plan_id), keep_ms)
        await redis.hincrby(keys.DELIVERY_TOTALS, f"{channel}.{outcome}", 1)
        record = keys.delivery_record(plan_id)  # the city's record keeps the receipts (publisher/record.py)
        await redis.hincrby(record, f"{channel}.{outcome}", 1)
        await redis.hset(record, f"{channel}.receipt_at", int(time.time() * 1000))
        if error_code == "21610":
            await subscribers.stop(channel, address)
    return bool(moved)
