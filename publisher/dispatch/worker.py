"""Dispatch workers: consume segments, send once per (warning version, recipient, channel).

Exactly-once: before sending, a worker claims each recipient in the version's state hash (HSETNX).
A claim left `sending` by a worker whose heartbeat has expired (it crashed mid-send) is taken over
and sent again: that in-flight window is the only source of duplicates. A segment whose worker died
is reclaimed from the consumer group after `dispatch_reclaim_after` seconds; a live worker keeps
its segment by re-claiming it while it works.

No send without a record: when Redis fails in a segment run, no lane starts another send (the rate
limiter stops handing out tokens within one period, see `ratelimit`), the sends in the air are
waited for, and what Redis did not take (results, claims to give back) stays in memory until it
answers again: written back before this worker does anything else there (`write_back`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar, cast

from redis.exceptions import RedisError

from foundation.errors import Unavailable
from foundation.retry import RetryPolicy
from foundation.store import keys
from foundation.store.durable import durable_all
from foundation.store.scripts import script
from foundation.store.streams import as_fields, decoded_list, ensure_group, next_entries
from foundation.supervisor import beat
from publisher.dispatch.channel import (
    AuthError,
    Channel,
    PermanentError,
    Rendition,
    RepliesInThreads,
    TemporaryError,
)
from publisher.dispatch.context import DispatchContext
from publisher.dispatch.fatigue import ALWAYS, Verdict, Version, decide, received_earlier, same_words
from publisher.dispatch.jobs import SEGMENT_SIZE, Segment, shard_of
from publisher.dispatch.ratelimit import PerAddressLimiter, RateLimiter
from publisher.dispatch.retention import keep_seconds_of
from publisher.model import Message, message_kind
from publisher.subscribers import Subscriber

log = logging.getLogger(__name__)
# A worker that has not said it is alive for this long is dead: its claims are taken over.
# Refreshed every second, so only an event loop stalled for seconds could be taken for dead
# (and then a few messages are sent twice, never lost).
HEARTBEAT_SECONDS = 5
STATE_WRITE_SECONDS = 0.2  # how often a segment run writes what it has sent so far
# How long Redis remembers which count batches of a segment run it has added: a batch whose reply was
# lost (Redis took it, then failed) is sent again when Redis is back, and must not count twice.
COUNTED_SECONDS = 24 * 3600
K = TypeVar("K")
V = TypeVar("V")
# Whether one recipient gets this segment's message, given what they received of its thread (fatigue).
Check = Callable[[Subscriber, Rendition], Awaitable[Verdict]]

# HSETNX for many recipients of one state shard at once: 1 where the claim is ours.
CLAIM = script("delivery_claim")
# Give back claims still held under this mark (sends that never completed): HDEL where unchanged.
RELEASE = script("delivery_release")
# Add a batch of counts to the statistics once, however often it is written.
COUNT = script("delivery_count")


def now_ms() -> int:
    return int(time.time() * 1000)


def _epoch_ms(iso: str | None) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else 0


async def _shared(cache: dict[K, asyncio.Future[V]], key: K, load: Callable[[], Awaitable[V]]) -> V:
    """`load()` once per key however many callers ask at the same time; a failure is not kept."""
    if key not in cache:
        cache[key] = asyncio.ensure_future(load())
    future = cache[key]
    if future.done() and not future.cancelled() and future.exception() is None:
        return future.result()  # the common case: loaded long ago, no need to wait
    try:
        return await asyncio.shield(future)  # one caller's cancellation does not cancel the others'
    except Exception:
        if cache.get(key) is future:
            del cache[key]
        raise


@dataclass
class Outcome:
    """What one segment did, written back to Redis in one pipeline (and its counts in `batches`)."""

    states: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    stats: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Counts on their way to Redis, each batch with its id: a batch that may have been added (its
    # write failed) is sent again under the same id, and Redis adds it only once (`delivery_count`).
    batches: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    retries: list[tuple[str, float]] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    unsubscribe: list[str] = field(default_factory=list)
    first_ms: int = 0
    last_ms: int = 0

    def take(self) -> Outcome:
        """What has been done since the last take, leaving this one empty (for the periodic writes)."""
        taken = Outcome(**vars(self))
        vars(self).update(vars(Outcome()))
        return taken

    def seal(self) -> None:
        """The counts so far become a batch of their own, with an id it keeps until it is written."""
        counts = {name: value for name, value in self.stats.items() if value}
        if counts:
            self.batches.append((uuid.uuid4().hex[:12], counts))
        self.stats = defaultdict(int)

    def merge(self, earlier: Outcome) -> None:
        """Take back an earlier take that could not be written: it goes with what follows."""
        for key, states in earlier.states.items():
            self.states[key] = {**states, **self.states.get(key, {})}
        for name, value in earlier.stats.items():
            self.stats[name] += value
        self.batches[:0] = earlier.batches
        self.recipients[:0] = earlier.recipients
        self.retries[:0] = earlier.retries
        self.dead[:0] = earlier.dead
        self.unsubscribe[:0] = earlier.unsubscribe
        if earlier.first_ms:
            self.first_ms = min(self.first_ms or earlier.first_ms, earlier.first_ms)
        self.last_ms = max(self.last_ms, earlier.last_ms)


class NotReplicated(RedisError):
    """Sends were written, but the replicas did not confirm them in time: like Redis failing, the run
    stops and the segment is taken up again, without writing those sends a second time."""


@dataclass
class Unwritten:
    """A segment run that ended with Redis failing: its results, and its claims to give back."""

    segment: Segment
    message: Message
    outcome: Outcome
    mark: str
    claimed: list[str]


class Worker:
    def __init__(self, ctx: DispatchContext, worker_id: str | None = None) -> None:
        self.ctx = ctx
        self.redis = ctx.redis
        self.settings = ctx.settings
        self.id = worker_id or f"w-{uuid.uuid4().hex[:10]}"
        self.retry = RetryPolicy.from_settings(self.settings)  # failed sends: back-off, then dead letter
        self._running = False  # `run` is going: only then does `heartbeat` say this worker is alive
        # Each channel's own limits, shared through Redis by every worker of the deployment.
        self.limiters = {name: RateLimiter(self.redis, name, ch.rate) for name, ch in ctx.channels.items()}
        self.per_address = {
            name: PerAddressLimiter(self.redis, f"{name}-address", ch.per_address_interval_ms)
            for name, ch in ctx.channels.items()
            if ch.per_address_interval_ms
        }
        self._active_marks: set[str] = set()  # claims of segments this worker is sending right now
        # A segment may wait long for its share of a slow rate; beyond this it is surely stuck.
        slowest = min((ch.rate / ch.max_units for ch in ctx.channels.values()), default=1.0)
        self._segment_timeout = max(120.0, 10 * self.settings.provider_timeout, 8 * SEGMENT_SIZE / slowest)
        # Lanes that need the same message or text at once wait for one load, not one each.
        self._messages: dict[str, asyncio.Future[Message]] = {}
        self._renditions: dict[tuple[str, str, str, str], asyncio.Future[Rendition]] = {}
        # What Redis did not take when it failed, oldest first: written back once it answers again.
        self._unwritten: list[Unwritten] = []
        self._writing_back = asyncio.Lock()

    # loops

    async def run(self) -> None:
        """The dispatch loop (the supervisor restarts it when it fails; `heartbeat` runs beside it)."""
        await ensure_group(self.redis, keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP)
        self._running = True
        try:
            while True:
                await self.run_once(block_ms=1000)
                beat()  # a round done (segments sent, or an idle wait); long rounds beat as they go
        finally:
            self._running = False
            if self._unwritten:
                log.warning("%d interrupted segment run(s) not written back yet", len(self._unwritten))

    async def heartbeat(self) -> None:
        """One beat, repeated every second by the supervisor: this worker is alive while `run` is
        going. Between a failed `run` and its restart it is not, so its claims can be taken over.
        First of all, it writes back what Redis did not take when it failed."""
        await self.write_back()
        if self._running:
            await self.redis.set(keys.worker_heartbeat(self.id), now_ms(), ex=HEARTBEAT_SECONDS)

    async def write_back(self) -> int:
        """Write the results of the segment runs that ended with Redis failing, and give back their
        unsent claims (oldest first; each step at most once). Returns how many runs were written."""
        if not self._unwritten:
            return 0
        async with self._writing_back:
            written = 0
            while self._unwritten:
                try:
                    await self._write(self._unwritten[0])
                except RedisError:
                    raise  # still away: the next round tries again
                except Exception:  # not Redis: it would never be written, so it must not block the rest
                    log.exception("could not write back an interrupted segment run; its claims are taken over")
                self._unwritten.pop(0)
                written += 1
        if written:
            log.warning("wrote back %d segment run(s) that Redis had not taken when it failed", written)
        return written

    async def _write(self, run: Unwritten) -> None:
        await self._record(run.segment, run.message, run.outcome, run.mark, final=False)
        run.outcome = Outcome()  # written: never counted twice
        by_key: dict[str, list[str]] = defaultdict(list)
        for address in run.claimed:
            by_key[keys.delivery_state(run.segment.message_id, run.segment.channel, shard_of(address))].append(address)
        for key, addresses in by_key.items():  # spares every claim whose state is no longer the mark
            await RELEASE(self.redis, keys=[key], args=[run.mark, *addresses])
        run.claimed = []

    async def run_once(self, block_ms: int | None = None, count: int = 4) -> int:
        """Handle a few segments: reclaimed ones from dead workers first, then new ones."""
        await self.write_back()  # before anything else: what a failed run sent must be on record
        await self.redis.set(keys.worker_heartbeat(self.id), now_ms(), ex=HEARTBEAT_SECONDS)
        await self.promote_due_retries()
        entries = await next_entries(
            self.redis,
            keys.DISPATCH_QUEUE,
            keys.DISPATCH_GROUP,
            self.id,
            reclaim_after=self.settings.dispatch_reclaim_after,
            count=count,
            block_ms=block_ms,
        )
        # The segments share the worker's concurrency as lanes: sends in flight never exceed it.
        lanes = max(1, self.settings.dispatch_concurrency // max(1, len(entries)))
        # Every segment ends its own way (a failed one gives back what it holds) before we go on.
        results = await asyncio.gather(
            *(self._handle_entry(entry_id, fields, lanes) for entry_id, fields in entries), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return len(entries)

    async def _handle_entry(self, entry_id: str, fields: dict[str, str], lanes: int) -> None:
        done = asyncio.Event()
        keeper = asyncio.create_task(self._keep_claimed(entry_id, done))
        try:
            # A watchdog: whatever happens inside, this worker gives the segment up in time and
            # another one (or this one, later) reclaims it; claims make the retry safe.
            await asyncio.wait_for(self.process(Segment.from_fields(fields), lanes), timeout=self._segment_timeout)
        except TimeoutError:
            log.error("segment %s took longer than %ss; leaving it for reclaim", entry_id, self._segment_timeout)
            return
        finally:
            done.set()
            await keeper
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xack(keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP, entry_id)
            pipe.xdel(keys.DISPATCH_QUEUE, entry_id)
            await pipe.execute()

    async def _keep_claimed(self, entry_id: str, done: asyncio.Event) -> None:
        """Reset the entry's idle time while we work, so nobody reclaims a live worker's segment.
        Stopped by `done`, never cancelled mid-command."""
        interval = max(0.5, self.settings.dispatch_reclaim_after / 3)
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), interval)
            except TimeoutError:
                await self.redis.xclaim(keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP, self.id, 0, [entry_id], justid=True)

    # one segment

    async def process(self, segment: Segment, lanes: int | None = None) -> None:
        message = await self._message(segment.message_id)
        channel = self.ctx.channels[segment.channel]
        subscribers = await channel.lookup(list(segment.addresses))
        policy_mode = (await self.ctx.policy.get()).get(message.content.grade, {}).get(segment.channel, "opted_in")
        eligible = [s for s in subscribers if s is not None and self._eligible(s, message, segment, policy_mode)]
        check = await self._fatigue_check(segment, message, channel, [s.address for s in eligible])
        # A mark per segment run: a claim of ours whose run is over (it failed) is not "being sent".
        mark = f"sending|{self.id}|{uuid.uuid4().hex[:12]}"
        self._active_marks.add(mark)
        outcome = Outcome()
        # Until the claims' replies are in, any of them may be ours: a failure gives back all of them
        # (only those still under this run's mark are released).
        claimed = [s.address for s in eligible]
        try:
            claimed = await self._claim(segment, claimed, mark)
            by_address = {s.address: s for s in eligible}
            todo = iter(claimed)
            halt = asyncio.Event()  # Redis failed: no lane starts another send
            recorded = asyncio.Event()  # clear while sends so far are being put on record
            recorded.set()

            async def lane() -> None:  # a few long-lived senders, not one task per recipient
                for address in todo:
                    await recorded.wait()
                    if halt.is_set():
                        return
                    try:
                        await self._deliver(channel, segment, message, by_address[address], outcome, halt, check)
                    except BaseException:
                        halt.set()
                        raise

            lanes = min(len(claimed), lanes or self.settings.dispatch_concurrency)
            senders = [asyncio.create_task(lane()) for _ in range(lanes)]
            await self._record_while(senders, halt, recorded, segment, message, outcome, mark)
            await self._record(segment, message, outcome, mark)
        except BaseException:  # the watchdog gave up, or Redis failed: keep what was done, free the rest
            await self._give_back(segment, message, outcome, mark, claimed)
            raise
        finally:
            self._active_marks.discard(mark)

    async def _record_while(
        self,
        senders: list[asyncio.Task[None]],
        halt: asyncio.Event,
        recorded: asyncio.Event,
        segment: Segment,
        message: Message,
        outcome: Outcome,
        mark: str,
    ) -> None:
        """Write what is done every STATE_WRITE_SECONDS until the lanes end: if this worker dies, the
        worker that takes over resends at most the sends of the last interval, not the whole segment's.

        While a write (and the wait for the replicas) is under way, `recorded` holds every lane before
        its next send: after a failover at most one interval's sends, plus those in the air, were not
        on the new primary, and only those can go twice.

        When Redis fails (a write here, or a lane's rate limit), `halt` stops every lane before its
        next send, and the sends in the air are waited for (a provider timeout at most), so that
        their results are known and kept. Cancelled (the watchdog, a shutdown), the lanes stop at once."""
        pending: set[asyncio.Task[None]] = set(senders)
        try:
            try:
                while pending and not halt.is_set():
                    _, pending = await asyncio.wait(pending, timeout=STATE_WRITE_SECONDS)
                    if pending and not halt.is_set() and (so_far := outcome.take()).stats:  # every send counts
                        recorded.clear()
                        try:
                            await self._record(segment, message, so_far, mark, final=False)
                        except NotReplicated:
                            raise  # written (never twice: the counts would be too), not yet safe: stop
                        except BaseException:
                            outcome.merge(so_far)  # not written: it goes with the rest
                            raise
                        finally:
                            recorded.set()
                        beat()  # sends are going out and on record
            except Exception:
                halt.set()
                recorded.set()  # the held lanes see the halt
                if pending:
                    await asyncio.wait(pending, timeout=self.settings.provider_timeout + 1)
                raise
            if pending:  # a lane lost Redis: the others end the send they are in, then stop
                await asyncio.wait(pending, timeout=self.settings.provider_timeout + 1)
        finally:
            halt.set()
            unfinished = [task for task in senders if not task.done()]
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished)
        errors = [error for task in senders if not task.cancelled() and (error := task.exception()) is not None]
        if errors:
            raise errors[0]  # Redis failed under the lanes: the run ends, what it holds is given back

    async def _give_back(
        self, segment: Segment, message: Message, outcome: Outcome, mark: str, claimed: list[str]
    ) -> None:
        """Record the sends that completed and release the other claims, so that whoever takes the
        segment up again sends those (an interrupted send may then go twice; none is lost). The
        release spares every claim whose state is no longer our mark: those were recorded.

        When Redis does not take it now, it is kept and written back as soon as Redis answers again
        (`write_back`), before this worker sends anything else."""
        self._unwritten.append(Unwritten(segment, message, outcome, mark, claimed))
        try:
            async with asyncio.timeout(5):
                await self.write_back()
        except Exception as exc:  # Redis is gone: kept for later (a worker that dies meanwhile loses it)
            log.warning(
                "Redis did not take an interrupted segment's results (%r); %d run(s) kept to write back",
                exc,
                len(self._unwritten),
            )

    def _eligible(self, sub: Subscriber, message: Message, segment: Segment, mode: str) -> bool:
        if not sub.active:
            return False  # STOP is honoured even for work planned before it
        if segment.earlier:
            return True  # they received an earlier version: they hear of its update or end
        if message.content.is_drill and not sub.drill:
            return False  # drills reach drill participants only
        if mode == "all":
            return True
        return mode == "opted_in" and sub.wants(message.content.grade)

    async def _claim(self, segment: Segment, addresses: list[str], mark: str) -> list[str]:
        if not addresses:
            return []
        by_key: dict[str, list[str]] = defaultdict(list)
        for address in addresses:
            by_key[keys.delivery_state(segment.message_id, segment.channel, shard_of(address))].append(address)
        # One script call per shard, not one HSETNX per recipient; all in one round trip (per node).
        results = await CLAIM.many(self.redis, [([key], [mark, *group]) for key, group in by_key.items()])
        claimed, taken = [], []
        for (key, group), flags in zip(by_key.items(), results, strict=True):
            for address, ok in zip(group, flags, strict=True):
                if ok:
                    claimed.append(address)
                else:
                    taken.append((key, address))
        if taken:
            held: list[str] = []
            claimed += await self._take_over_from_dead(taken, mark, segment.attempt, held)
            if held:
                # Their owner may have died a moment ago (its heartbeat has not expired yet): look again
                # once it has, or we would lose them when this segment is acknowledged.
                recheck = Segment(
                    segment.message_id,
                    segment.channel,
                    segment.kind,
                    tuple(held),
                    segment.attempt,
                    segment.earlier,
                    recheck=True,
                )
                await self.redis.zadd(
                    keys.DISPATCH_RETRY, {json.dumps(recheck.to_fields()): time.time() + HEARTBEAT_SECONDS + 1}
                )
        return claimed

    async def _take_over_from_dead(
        self, taken: list[tuple[str, str]], mark: str, retry_attempt: int, held: list[str]
    ) -> list[str]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, address in taken:
                pipe.hget(key, address)
            states = await pipe.execute()
        mine = []
        for (key, address), state in zip(taken, states, strict=True):
            kind, _, rest = (state or "").partition("|")
            if kind == "retry" and retry_attempt > 0:
                mine.append((key, address))  # this is the scheduled retry itself
            elif kind == "sending":
                owner = rest.split("|", 1)[0]
                if owner == self.id:
                    if state not in self._active_marks:
                        mine.append((key, address))  # our own run of it failed before giving it back
                elif not await self.redis.exists(keys.worker_heartbeat(owner)):
                    mine.append((key, address))  # its worker died mid-send
                else:
                    held.append(address)  # another worker has it, or seems to: look later
        if mine:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, address in mine:
                    pipe.hset(key, address, mark)
                await pipe.execute()
        return [address for _, address in mine]

    async def _message(self, plan_id: str) -> Message:
        message_id = plan_id.split(":", 1)[0]
        if len(self._messages) > 256:
            self._messages.clear()
            self._renditions.clear()
        return await _shared(self._messages, message_id, lambda: self.ctx.warnings.get(message_id))

    async def _rendition(self, channel: Channel, message: Message, locale: str, kind: str) -> Rendition:
        key = (message.id, channel.name, locale, kind)
        return await _shared(self._renditions, key, lambda: channel.render(message, locale, kind=kind))

    async def _deliver(
        self,
        channel: Channel,
        segment: Segment,
        message: Message,
        sub: Subscriber,
        out: Outcome,
        halt: asyncio.Event | None = None,
        check: Check | None = None,
    ) -> None:
        state_key = keys.delivery_state(segment.message_id, channel.name, shard_of(sub.address))
        ch = channel.name
        try:  # everything that can fail for one recipient, so it never takes the segment down
            rendition = await self._rendition(channel, message, sub.lang, segment.kind)
            verdict = await check(sub, rendition) if check is not None else None
            if verdict is not None and not verdict.send:
                self._spare(segment, sub.address, state_key, out, verdict)
                return
            await self.limiters[ch].take(rendition.units)
            if per_address := self.per_address.get(ch):
                await per_address.wait_turn(sub.address)
            if halt is not None and halt.is_set():
                return  # Redis failed meanwhile: this claim is given back unsent
            if verdict is not None and verdict.reply_to and getattr(channel, "threads_replies", False):
                result = await cast(RepliesInThreads, channel).send(
                    sub.address, rendition, reference=segment.message_id, reply_to=verdict.reply_to
                )
            else:
                result = await channel.send(sub.address, rendition, reference=segment.message_id)
        except RedisError:  # no recipient's failure (nothing goes out without the shared limits):
            raise  # the segment run ends, and `process` gives back what it holds
        except TemporaryError as exc:
            self._retry_or_dead(segment, sub.address, state_key, out, exc.code or "temporary", exc.retry_after)
            return
        except AuthError as exc:
            log.error("%s credentials refused: %s", ch, exc)
            self._retry_or_dead(segment, sub.address, state_key, out, "auth", 60.0)
            return
        except PermanentError as exc:
            out.states[state_key][sub.address] = f"failed|{exc.code}"
            out.stats[f"{ch}.failed"] += 1
            if exc.unsubscribe:
                out.unsubscribe.append(sub.address)
            return
        except Exception as exc:  # an unknown failure must not lose the recipient
            log.exception("unexpected error sending on %s", ch)
            self._retry_or_dead(segment, sub.address, state_key, out, exc.__class__.__name__, None)
            return
        stamp = now_ms()
        out.first_ms = min(out.first_ms or stamp, stamp)
        out.last_ms = max(out.last_ms, stamp)
        delivered = result.status == "delivered"
        out.states[state_key][sub.address] = f"{'delivered' if delivered else 'sent'}|{result.provider_id}"
        out.stats[f"{ch}.sent"] += 1
        if delivered:
            out.stats[f"{ch}.delivered"] += 1
        out.recipients.append(sub.address)

    async def _fatigue_check(
        self, segment: Segment, message: Message, channel: Channel, addresses: list[str]
    ) -> Check | None:
        """The fatigue rules for this segment's recipients (`fatigue`), or None for a thread's first
        message (nobody has received anything of it yet: no lookup at all)."""
        if not message.references or not addresses:
            return None
        thread = await self.ctx.warnings.thread(message.thread)
        position = thread.published.index(message.id) if message.id in thread.published else len(thread.published)
        ids = thread.published[: position + 1 if segment.kind == "expired" else position]
        versions = [await self._message(v) for v in ids]
        earlier = [Version(v.id, _epoch_ms(v.sent)) for v in versions]
        received = await received_earlier(self.redis, earlier, channel.name, addresses)
        by_id = {v.id: v for v in versions}
        # A retry that waited for room in the hour, overtaken meanwhile: the newer version goes to them
        # (it goes to everyone who received an earlier one).
        superseded = segment.attempt > 0 and segment.kind not in ALWAYS and thread.current != message.id
        per_hour = self.settings.thread_messages_per_hour

        async def check(sub: Subscriber, rendition: Rendition) -> Verdict:
            got = received.get(sub.address, [])
            if superseded and got:  # someone who never got any version (a failed send) still gets this one
                return Verdict(False, "superseded")
            texts = []
            for r in got:
                earlier = by_id[r.version.message_id]
                text = (await self._rendition(channel, earlier, sub.lang, message_kind(earlier.msg_type))).text
                texts.append(same_words(text, earlier.id))
            clock_ms = int(self.ctx.warnings.now().timestamp() * 1000)  # the clock warnings are published by
            text = same_words(rendition.text, message.id)
            return decide(segment.kind, text, got, texts, now_ms=clock_ms, per_hour=per_hour)

        return check

    def _spare(self, segment: Segment, address: str, state_key: str, out: Outcome, verdict: Verdict) -> None:
        """Not sent, by the fatigue rules: skipped for good, or waiting for room in the hour."""
        ch = segment.channel
        if verdict.reason != "per_hour":
            out.states[state_key][address] = f"skipped|{verdict.reason}"
            out.stats[f"{ch}.skipped"] += 1
            return
        attempt = segment.attempt + 1
        job = json.dumps(
            {
                **Segment(segment.message_id, ch, segment.kind, (address,), attempt, segment.earlier).to_fields(),
                "error": "per_hour",
            }
        )
        out.states[state_key][address] = f"retry|{attempt}"
        out.retries.append((job, time.time() + verdict.wait_seconds))
        out.stats[f"{ch}.retrying"] += 1

    def _retry_or_dead(
        self, segment: Segment, address: str, state_key: str, out: Outcome, code: str, retry_after: float | None
    ) -> None:
        attempt = segment.attempt + 1
        ch = segment.channel
        job = json.dumps(
            {
                **Segment(segment.message_id, ch, segment.kind, (address,), attempt, segment.earlier).to_fields(),
                "error": code,
            }
        )
        if self.retry.exhausted(attempt):
            out.states[state_key][address] = f"dead|{code}"
            out.dead.append(job)
            out.stats[f"{ch}.dead"] += 1
            return
        out.states[state_key][address] = f"retry|{attempt}"
        out.retries.append((job, time.time() + self.retry.delay(attempt, retry_after)))
        out.stats[f"{ch}.retrying"] += 1

    async def _record(self, segment: Segment, message: Message, out: Outcome, mark: str, *, final: bool = True) -> None:
        """Write back what `out` holds for the segment run `mark`; `final`: the segment is done (its
        retry is no longer pending). Everything but the counts can be written twice unchanged; the
        counts go as batches Redis adds once each (`_count`), so a write whose reply was lost and
        that is made again after a failure counts nothing twice."""
        ch = segment.channel
        stats_key = keys.delivery_stats(segment.message_id)
        keep = await keep_seconds_of(self.ctx, message.thread)  # while the warning is in force, and the retention
        async with self.redis.pipeline(transaction=False) as pipe:
            for state_key, states in out.states.items():
                pipe.hset(state_key, mapping=as_fields(states))
                pipe.expire(state_key, keep)
            if final and segment.attempt > 0 and not segment.recheck:
                out.stats[f"{ch}.retrying"] -= 1  # this recipient was counted as retrying
            out.seal()
            if out.first_ms:
                pipe.hsetnx(stats_key, f"{ch}.first_at", out.first_ms)
                pipe.hset(stats_key, f"{ch}.last_at", out.last_ms)  # approximately the latest
                record_key = keys.delivery_record(segment.message_id)  # the kept record, same slot
                pipe.hsetnx(record_key, f"{ch}.first_at", out.first_ms)
                pipe.hset(record_key, f"{ch}.last_at", out.last_ms)
            pipe.expire(stats_key, keep)
            by_shard: dict[int, list[str]] = defaultdict(list)
            for address in out.recipients:
                by_shard[shard_of(address)].append(address)
            for shard, addresses in by_shard.items():
                pipe.sadd(keys.thread_recipients(message.thread, ch, shard), *addresses)
                pipe.expire(keys.thread_recipients(message.thread, ch, shard), keep)
            if out.retries:
                pipe.zadd(keys.DISPATCH_RETRY, dict(out.retries))
            if out.dead:
                pipe.lpush(keys.DISPATCH_DEAD, *[json.dumps({**json.loads(j), "at": now_ms()}) for j in out.dead])
            await pipe.execute()
        await self._count(out, mark, stats_key, keep)
        await self._replicated(out)
        for address in out.unsubscribe:
            await self.ctx.subscribers.stop(ch, address)

    async def _count(self, out: Outcome, mark: str, stats_key: str, keep: int) -> None:
        """Add the outcome's count batches to the warning's statistics and the deployment's totals
        (those leave out `retrying`, a state, not an event), each batch once: one round trip (per node)."""
        run = mark.rsplit("|", 1)[-1]
        calls: list[tuple[list[str], list[object]]] = []
        for batch, counts in out.batches:
            totals = {name: value for name, value in counts.items() if not name.endswith(".retrying")}
            for key, added, ttl in ((stats_key, counts, keep), (keys.DELIVERY_TOTALS, totals, 0)):
                if added:
                    pairs = [part for name, value in added.items() for part in (name, value)]
                    calls.append(([key, keys.counted_batches(key, run)], [batch, COUNTED_SECONDS, ttl, *pairs]))
        if calls:
            await COUNT.many(self.redis, calls)
        out.batches.clear()

    async def _replicated(self, out: Outcome) -> None:
        """Sends on record are on the replicas too before more go out: a failover may lose writes the
        primary took but had not passed on, and each lost "sent" would be sent again. Waiting here
        bounds that to the sends of one write interval. A wait that times out raises NotReplicated:
        the run stops sending (what it wrote stays written) and the segment is taken up again later."""
        min_replicas = self.settings.redis_min_replicas
        if not min_replicas or not out.states:
            return
        try:
            await durable_all(self.redis, min_replicas, out.states)
        except Unavailable as exc:
            out.take()  # written: whoever holds this outcome must not write it again
            raise NotReplicated(f"sends on record did not reach {min_replicas} replica(s) in time") from exc

    async def promote_due_retries(self) -> int:
        """Move retries whose time has come back onto the queue (ZREM decides who moves each)."""
        due = decoded_list(await self.redis.zrangebyscore(keys.DISPATCH_RETRY, "-inf", time.time(), start=0, num=500))
        moved = 0
        for job in due:
            if await self.redis.zrem(keys.DISPATCH_RETRY, job):
                fields = json.loads(job)
                fields.pop("error", None)
                await self.redis.xadd(keys.DISPATCH_QUEUE, fields)
                moved += 1
        return moved
