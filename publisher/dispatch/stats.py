"""Delivery statistics per warning version and channel."""

from __future__ import annotations

from typing import Any

from foundation.i18n import N_
from foundation.store import keys
from publisher.dispatch.context import DispatchContext
from publisher.policy import PUSH_CHANNELS

COUNTS = ("planned", "sent", "delivered", "failed", "retrying", "dead", "skipped")
COUNT_NAMES = {  # column headings in the console
    "planned": N_("planned"),
    "sent": N_("sent"),
    "delivered": N_("delivered"),
    "failed": N_("failed"),
    "retrying": N_("retrying"),
    "dead": N_("dead"),
    "skipped": N_("skipped"),  # by the fatigue rules (publisher/dispatch/fatigue.py)
}


async def delivery_stats(ctx: DispatchContext, plan_id: str) -> dict[str, Any]:
    raw = await ctx.redis.hgetall(keys.delivery_stats(plan_id))
    published = int(raw.get("published_at", 0))
    channels: dict[str, dict[str, Any]] = {}
    # Resident channels, partner webhooks and whatever else the process runs (duty groups).
    for channel in dict.fromkeys((*PUSH_CHANNELS, "partner", *ctx.channels)):
        row: dict[str, Any] = {name: int(raw.get(f"{channel}.{name}", 0)) for name in COUNTS}
        first, last = int(raw.get(f"{channel}.first_at", 0)), int(raw.get(f"{channel}.last_at", 0))
        row["seconds_to_first"] = round((first - published) / 1000, 3) if first and published else None
        row["seconds_to_last"] = round((last - published) / 1000, 3) if last and published else None
        row["pending"] = max(0, row["planned"] - row["sent"] - row["failed"] - row["dead"] - row["skipped"])
        channels[channel] = row
    return {"planned": bool(raw), "kind": raw.get("kind", ""), "channels": channels}
