"""The closed loop's last step: tell reporters by SMS or Telegram what became of their report.

Triage writes each status change as an entry of the durable stream `keys.REPORT_NOTIFICATIONS`
(fields channel, address, locale, tracking_code, status, text: already in the reporter's language).
This consumer reads it through its own consumer group, so any number of processes share the work
and an entry whose consumer died is taken over (XAUTOCLAIM after `dispatch_reclaim_after`).

- success or permanent failure: acknowledged. `channel=web` entries are acknowledged unsent (they
  are the record of what the tracking page says).
- temporary failure: the entry stays pending and its retry waits in a sorted set with exponential
  backoff; XPENDING's delivery count bounds the attempts, then it becomes a dispatch dead letter.
- no duplicates: the entry id goes into a small set (with a TTL) before the ack, so a consumer
  that dies between sending and acknowledging is not followed by a second send. The only window
  left is a crash during the provider call itself.
- "received" for a report that came by SMS or Telegram was already answered in that conversation
  (the webhook replies with the tracking code), so it is acknowledged without sending again.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from foundation.retry import RetryPolicy
from foundation.store import keys
from foundation.store.streams import Entry, decoded, decoded_list, ensure_group, entries, next_entries
from foundation.supervisor import beat
from publisher.dispatch.channel import AuthError, PermanentError, TemporaryError
from publisher.dispatch.context import DispatchContext
from publisher.dispatch.ratelimit import RateLimiter
from publisher.dispatch.retention import retention_cutoff

log = logging.getLogger(__name__)
DEAD_KIND = "report-notification"  # `kind` of these entries in the dispatch dead-letter list
SENT_TTL = 7 * 86400


class Notifier:
    def __init__(self, ctx: DispatchContext, consumer: str | None = None) -> None:
        self.ctx = ctx
        self.redis = ctx.redis
        self.settings = ctx.settings
        self.id = consumer or f"n-{uuid.uuid4().hex[:10]}"
        # The dispatch workers' policy, but never later than the takeover of a dead consumer's
        # entries (XAUTOCLAIM after `dispatch_reclaim_after`): that would retry it anyway.
        self.retry = RetryPolicy.from_settings(self.settings, cap=self.settings.dispatch_reclaim_after)
        # The same buckets as the dispatch workers': notices and warnings share a provider's rate.
        self.limiters = {name: RateLimiter(self.redis, name, ch.rate) for name, ch in ctx.channels.items()}
        # Reporters hear back on the resident channels they wrote from, duty groups get their pages
        # on their robots; partner systems get warnings only.
        self.pushed = {name for name, ch in ctx.channels.items() if ch.takes_notices}

    async def run(self) -> None:
        await ensure_group(self.redis, keys.REPORT_NOTIFICATIONS, keys.REPORT_NOTIFY_GROUP)
        while True:
            await self.run_once(block_ms=1000)
            beat()  # a round done, or an idle wait: this loop is alive (see foundation.supervisor)

    async def run_once(self, block_ms: int | None = None, count: int = 16) -> int:
        """Handle a few entries: due retries first, then those of dead consumers, then new ones."""
        entries = await self._due_retries(count)
        if not entries:
            entries = await next_entries(
                self.redis,
                keys.REPORT_NOTIFICATIONS,
                keys.REPORT_NOTIFY_GROUP,
                self.id,
                reclaim_after=self.settings.dispatch_reclaim_after,
                count=count,
                block_ms=block_ms,
            )
        # Most entries (web reporters) need no sending: acknowledge them together, in one round trip.
        idle = [e for e, f in entries if not f or f.get("channel") not in self.pushed or not f.get("address")]
        if idle:
            await self._ack(*idle)
        for entry_id, fields in entries:
            if entry_id not in idle:
                await self.handle(entry_id, fields)
                beat()
        return len(entries)

    async def _due_retries(self, count: int) -> list[tuple[str, dict[str, str]]]:
        due = decoded_list(
            await self.redis.zrangebyscore(keys.REPORT_NOTIFY_RETRY, "-inf", time.time(), start=0, num=count)
        )
        found: list[Entry] = []
        for entry_id in due:
            if await self.redis.zrem(keys.REPORT_NOTIFY_RETRY, entry_id):  # ZREM decides who retries it
                # XCLAIM counts the delivery, which is what bounds the attempts.
                found += entries(
                    await self.redis.xclaim(keys.REPORT_NOTIFICATIONS, keys.REPORT_NOTIFY_GROUP, self.id, 0, [entry_id])
                )
        return found

    async def handle(self, entry_id: str, fields: dict[str, str] | None) -> None:
        if not fields or await self.redis.sismember(keys.REPORT_NOTIFY_SENT, entry_id):
            await self._ack(entry_id)  # trimmed away, or sent by a consumer that died before its ack
            return
        ch, address = fields.get("channel", ""), fields.get("address", "")
        if ch not in self.pushed or not address or await self._answered_in_conversation(fields):
            await self._ack(entry_id)
            return
        channel = self.ctx.channels.get(ch)
        if channel is None:
            await self._dead(entry_id, fields, "no_channel", await self._attempts(entry_id))
            return
        rendition = channel.render_text(fields.get("text", ""))
        try:
            await self.limiters[ch].take(rendition.units)
            await channel.send(address, rendition, reference=fields.get("tracking_code", ""))
        except TemporaryError as exc:
            await self._retry_or_dead(entry_id, fields, exc.code or "temporary", exc.retry_after)
            return
        except AuthError as exc:
            log.error("%s credentials refused while notifying a reporter: %s", ch, exc)
            await self._retry_or_dead(entry_id, fields, "auth", 60.0)
            return
        except PermanentError as exc:
            log.info("reporter unreachable on %s (%s): notification dropped", ch, exc.code)
            await self._ack(entry_id)
            return
        except Exception as exc:  # an unknown failure must not lose the notification
            log.exception("unexpected error notifying a reporter on %s", ch)
            await self._retry_or_dead(entry_id, fields, exc.__class__.__name__, None)
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.REPORT_NOTIFY_SENT, entry_id)
            pipe.expire(keys.REPORT_NOTIFY_SENT, SENT_TTL)
            await pipe.execute()
        await self._ack(entry_id)

    async def _answered_in_conversation(self, fields: dict[str, str]) -> bool:
        """A report that came by SMS or Telegram got its "received" reply in the same conversation."""
        if fields.get("status") != "received":
            return False
        report_id = await self.redis.hget(keys.REPORTS_BY_TRACKING, fields.get("tracking_code", ""))
        raw = await self.redis.get(keys.report(decoded(report_id))) if report_id else None
        return raw is not None and json.loads(raw).get("channel") == fields.get("channel")

    async def _attempts(self, entry_id: str) -> int:
        pending = await self.redis.xpending_range(
            keys.REPORT_NOTIFICATIONS, keys.REPORT_NOTIFY_GROUP, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _retry_or_dead(self, entry_id: str, fields: dict[str, str], code: str, retry_after: float | None) -> None:
        attempts = await self._attempts(entry_id)  # XPENDING's delivery count
        if self.retry.exhausted(attempts):
            await self._dead(entry_id, fields, code, attempts)
            return
        delay = self.retry.delay(attempts, retry_after)
        await self.redis.zadd(keys.REPORT_NOTIFY_RETRY, {entry_id: time.time() + delay})

    async def _dead(self, entry_id: str, fields: dict[str, str], code: str, attempts: int) -> None:
        letter = {
            "msg": f"report:{fields.get('tracking_code', '')}",
            "ch": fields.get("channel", ""),
            "kind": DEAD_KIND,
            "to": fields.get("address", ""),
            "attempt": attempts,
            "error": code,
            "at": int(time.time() * 1000),
            "entry": entry_id,
            "fields": fields,
        }
        log.warning("notification %s to a reporter failed %s times (%s): dead letter", entry_id, attempts, code)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(keys.DISPATCH_DEAD, json.dumps(letter, ensure_ascii=False))
            pipe.hincrby(keys.DELIVERY_TOTALS, f"{letter['ch']}.dead", 1)
            await pipe.execute()
        await self._ack(entry_id)

    async def _ack(self, *entry_ids: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:  # one slot: {reports}
            pipe.xack(keys.REPORT_NOTIFICATIONS, keys.REPORT_NOTIFY_GROUP, *entry_ids)
            pipe.zrem(keys.REPORT_NOTIFY_RETRY, *entry_ids)
            pipe.srem(keys.REPORT_NOTIFY_SENT, *entry_ids)
            # Entries older than the delivery retention are done with (sent, or dead letters by then).
            pipe.xtrim(keys.REPORT_NOTIFICATIONS, minid=retention_cutoff(self.settings), approximate=False)
            await pipe.execute()


async def requeue(ctx: DispatchContext, letter: dict[str, Any]) -> bool:
    """Put a notification dead letter back on its stream as a new entry; False if it is not one."""
    if letter.get("kind") != DEAD_KIND or not isinstance(letter.get("fields"), dict):
        return False
    await ctx.redis.xadd(keys.REPORT_NOTIFICATIONS, letter["fields"])
    return True
