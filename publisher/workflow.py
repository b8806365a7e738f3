"""The release workflow: draft → submitted → approved → (scheduled →) published, and after.

Every step is one optimistic Redis transaction over the message, its thread and the indexes (all
in the `{warnings}` slot), followed by an audit entry. Published messages are never edited: an
update or a cancellation is a new message that references the earlier ones.
"""

from __future__ import annotations

import builtins  # `Warnings.list` shadows the built-in inside the class
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from foundation.access.audit import SYSTEM, Actor, AuditLog
from foundation.access.roles import allowed
from foundation.access.units import IMPLICIT_ID, Organisation, Units, implicit_centre
from foundation.areas.registry import AreaRegistry
from foundation.clock import Clock
from foundation.errors import Conflict, Forbidden, NotFound, ValidationFailed
from foundation.i18n import N_, Catalogs, locale_for_tag
from foundation.settings import Settings
from foundation.store import keys
from foundation.store.durable import durable
from foundation.store.streams import decoded, decoded_list
from publisher.approval_rules import ApprovalRules
from publisher.identifiers import new_identifier
from publisher.model import (
    ACTIVE,
    CANCELLED,
    DRAFT,
    EDITABLE,
    EXPIRED,
    PENDING,
    PUBLISHED,
    REJECTED,
    SCHEDULED,
    SUBMITTED,
    WITHDRAWN,
    Approval,
    Content,
    InfoText,
    Message,
    Thread,
)
from publisher.scope import (
    Issuer,
    issuer_for,
    issuing_unit,
    require_approver_scope,
    require_drafter_scope,
    require_inside,
)
from publisher.taxonomy import GRADES
from publisher.validation import Collector, clean_text, parse_content

log = logging.getLogger(__name__)
EVENTS_MAXLEN = 10_000


class Warnings:
    def __init__(
        self,
        redis: aioredis.Redis,
        registry: AreaRegistry,
        audit: AuditLog,
        settings: Settings,
        catalogs: Catalogs,
        clock: Clock | None = None,
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.audit = audit
        self.settings = settings
        self.catalogs = catalogs
        self.rules = ApprovalRules(redis)
        self.units = Units(redis, settings)
        # Told of each message that starts waiting for approval (the duty groups' pager, wired by
        # the composition root): the message, and whether a chief of the release centre must approve.
        self.on_submitted: list[Callable[[Message, bool], Awaitable[None]]] = []
        self._clock = clock or (lambda: datetime.now(settings.tz))

    def now(self) -> datetime:
        return self._clock().astimezone(self.settings.tz).replace(microsecond=0)

    # reading

    async def get(self, message_id: str) -> Message:
        raw = await self.redis.get(keys.warning(message_id)) if len(message_id) <= 64 else None
        if raw is None:
            raise NotFound(N_("No warning with this id."))
        return Message.from_json(json.loads(raw))

    async def thread(self, thread_id: str) -> Thread:
        raw = await self.redis.get(keys.thread(thread_id))
        return Thread(**json.loads(raw)) if raw else Thread(thread_id)

    async def list(self, *, limit: int = 100, offset: int = 0) -> list[Message]:
        ids = decoded_list(await self.redis.zrevrange(keys.WARNINGS_INDEX, offset, offset + limit - 1))
        return await self._many(ids)

    async def of_units(self, units: builtins.list[str], *, limit: int = 100) -> builtins.list[Message]:
        """The newest messages the given units issued, newest first (units' own index)."""
        ids: set[str] = set()
        for unit in units:
            ids.update(decoded_list(await self.redis.zrevrange(keys.unit_warnings(unit), 0, limit - 1)))
        # An identifier ends with its issue time and sequence (`…_YYYYMMDDhhmmss_N`): newest first.
        newest = sorted(ids, key=lambda i: i[-16:], reverse=True)[:limit]
        return await self._many(newest)

    async def units_answered_by_centre(self, org: Organisation) -> builtins.list[str]:
        """The indexed unit ids no unit of `org` has: the implicit centre of before units were
        configured, and units since deleted. Their messages are the release centre's now
        (`scope.issuing_unit`), so its own listing includes them."""
        indexed = set(decoded_list(list(await self.redis.smembers(keys.UNITS_INDEXED)))) | {IMPLICIT_ID}
        return sorted(u for u in indexed if org.find(u) is None)

    async def index_messages_from_before_units(self, batch: int = 500) -> int:
        """Once per store: put the messages written before the units' index existed (no unit) in the
        implicit centre's index, so every message is in some unit's record. Returns how many."""
        if await self.redis.exists(keys.UNITS_BACKFILLED):
            return 0
        added, offset = 0, 0
        while page := await self.redis.zrange(keys.WARNINGS_INDEX, offset, offset + batch - 1, withscores=True):
            offset += batch
            created: dict[str, float] = dict(cast(list[tuple[str, float]], page))
            raws = await self.redis.mget([keys.warning(i) for i in created])
            unindexed = {m.id: created[m.id] for r in raws if r and not (m := Message.from_json(json.loads(r))).unit}
            if unindexed:
                await self.redis.zadd(keys.unit_warnings(IMPLICIT_ID), unindexed)
                await self.redis.sadd(keys.UNITS_INDEXED, IMPLICIT_ID)
                added += len(unindexed)
        await self.redis.set(keys.UNITS_BACKFILLED, str(added))
        return added

    async def _many(self, ids: builtins.list[str]) -> builtins.list[Message]:
        if not ids:
            return []
        raws = await self.redis.mget([keys.warning(i) for i in ids])
        return [Message.from_json(json.loads(r)) for r in raws if r]

    async def active(self) -> builtins.list[Message]:
        """The current message of every warning in force now, most serious first."""
        now = self.now()
        thread_ids = decoded_list(await self.redis.zrangebyscore(keys.WARNINGS_EXPIRY, now.timestamp(), "+inf"))
        threads = [await self.thread(t) for t in thread_ids]
        current = [t.current for t in threads if t.status == ACTIVE and t.current]
        messages = [m for m in await self._many(current) if m.content.expires > now]
        return sorted(messages, key=lambda m: (-GRADES.index(m.content.grade), m.sent or ""))

    async def thread_messages(self, thread_id: str) -> builtins.list[Message]:
        thread = await self.thread(thread_id)
        return await self._many(thread.published)

    # composing

    def _parse(self, body: Any, base: Content | None = None) -> Content:
        return parse_content(
            body,
            registry=self.registry,
            languages=self.settings.languages,
            tz=self.settings.tz,
            now=self.now(),
            base=base,
        )

    async def create(self, actor: Actor, body: Any, *, source: dict[str, str] | None = None) -> Message:
        """A new draft. A machine `source` (its `key` names it) drafts once: asked again, as after a
        crash, it gets the draft it made."""
        _require(actor, "warning.create")
        content = self._parse(body)
        org = await self.units.organisation()
        issuer = issuer_for(org, self.registry, actor, content)
        if source and (made := await self._made_by(source)):
            return made
        message = await self._new_message(
            actor, content, "Alert", thread=None, state=DRAFT, issuer=issuer, source=source
        )
        await self.audit.append(
            actor.label,
            "create",
            message.id,
            grade=content.grade,
            event=content.event,
            status=content.status,
            **_unit_details(message),
        )
        return message

    async def edit(self, actor: Actor, message_id: str, body: Any) -> Message:
        _require(actor, "warning.create")
        org = await self.units.organisation()

        def change(m: Message, now: datetime) -> None:
            if m.state not in EDITABLE:
                raise Conflict(N_("Only drafts and rejected warnings can be edited."))
            require_drafter_scope(org, actor, m)
            _own_or_chief(actor, m)
            content = self._parse(body, base=m.content)
            require_inside(issuing_unit(org, m), self.registry, content)  # the draft keeps its unit
            m.content = content
            m.state, m.rejection = DRAFT, None

        message = await self._mutate(message_id, change)
        await self.audit.append(actor.label, "edit", message.id, **_unit_details(message))
        return message

    async def _new_message(
        self,
        actor: Actor,
        content: Content,
        msg_type: str,
        *,
        thread: str | None,
        state: str,
        issuer: Issuer,
        note: str = "",
        source: dict[str, str] | None = None,
    ) -> Message:
        now = self.now()
        unit = issuer.unit
        message_id = await new_identifier(self.redis, unit.identifier_prefix(self.settings.id_prefix), now)
        stamp = now.isoformat()
        message = Message(
            id=message_id,
            thread=thread or message_id,
            msg_type=msg_type,
            state=state,
            content=content,
            drafter=actor.name,
            created=stamp,
            updated=stamp,
            note=note,
            unit=unit.id,
            proposed_by=issuer.proposed_by,
            issuer={
                "sender": unit.sender or self.settings.sender,
                "names": dict(unit.names),
                # A configured unit is named in every message; the implicit centre as before.
                **({"named": True} if unit != implicit_centre(self.settings) else {}),
            },
            source=dict(source or {}),
        )
        source_key = keys.warning_source(source["key"]) if source else None
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                if source_key:
                    await pipe.watch(source_key)
                    if await pipe.get(source_key):
                        raise WatchError  # made since we looked
                    pipe.multi()
                pipe.set(keys.warning(message.id), json.dumps(message.to_json(), ensure_ascii=False))
                pipe.zadd(keys.WARNINGS_INDEX, {message.id: now.timestamp()})
                pipe.zadd(keys.unit_warnings(unit.id), {message.id: now.timestamp()})
                pipe.sadd(keys.UNITS_INDEXED, unit.id)
                if source_key:
                    pipe.set(source_key, message.id)
                await pipe.execute()
        except WatchError:
            made = await self._made_by(source or {})
            if made is None:
                raise
            return made
        return message

    async def _made_by(self, source: dict[str, str]) -> Message | None:
        made = await self.redis.get(keys.warning_source(source["key"]))
        return await self.get(decoded(made)) if made else None

    # approval

    async def submit(self, actor: Actor, message_id: str) -> Message:
        _require(actor, "warning.submit")
        org = await self.units.organisation()

        def change(m: Message, now: datetime) -> None:
            if m.state not in EDITABLE:
                raise Conflict(N_("Only drafts and rejected warnings can be submitted."))
            require_drafter_scope(org, actor, m)
            _own_or_chief(actor, m)
            m.state, m.rejection, m.approvals = SUBMITTED, None, []

        message = await self._mutate(message_id, change)
        await self.audit.append(actor.label, "submit", message.id, **_unit_details(message))
        await self._announce(message, org)
        return message

    async def approve(self, actor: Actor, message_id: str, comment: str = "") -> Message:
        _require(actor, "warning.approve")
        comment = _comment(comment, "comment", required=False)
        message = await self.get(message_id)
        org = await self.units.organisation()
        quorum = await self.rules.quorum_for(message, org.root.id)

        def change(m: Message, now: datetime) -> None:
            unit = require_approver_scope(org, actor, m)
            if m.state != SUBMITTED:
                raise Conflict(N_("Only submitted warnings can be approved."))
            if m.drafter == actor.name:
                raise Forbidden(N_("You cannot approve a warning you drafted."))
            if any(a.user == actor.name for a in m.approvals):
                raise Conflict(N_("You have already approved this warning."))
            m.approvals.append(Approval(actor.name, sorted(actor.roles), now.isoformat(), comment, unit=unit.id))

        message = await self._mutate(message_id, change)
        await self.audit.append(actor.label, "approve", message.id, comment=comment, **_unit_details(message))
        if quorum.met_by(message):
            message = await self._release(message.id, actor)
        return message

    async def reject(self, actor: Actor, message_id: str, comment: str) -> Message:
        _require(actor, "warning.reject")
        comment = _comment(comment, "comment", required=True)
        org = await self.units.organisation()

        def change(m: Message, now: datetime) -> None:
            require_approver_scope(org, actor, m)
            if m.state not in (SUBMITTED, SCHEDULED):
                raise Conflict(N_("Only submitted or scheduled warnings can be rejected."))
            if m.drafter == actor.name:
                raise Forbidden(N_("You cannot reject a warning you drafted; edit it instead."))
            m.state = REJECTED
            m.rejection = {"by": actor.name, "comment": comment, "at": now.isoformat()}
            m.approvals = []

        message = await self._mutate(message_id, change, unschedule=True)
        await self.audit.append(actor.label, "reject", message.id, comment=comment, **_unit_details(message))
        return message

    async def fast_path(self, actor: Actor, message_id: str, reason: str) -> Message:
        """A chief publishes at once, with a written reason; the warning is flagged for review."""
        _require(actor, "warning.fast_path")
        reason = _comment(reason, "reason", required=True)
        org = await self.units.organisation()

        def change(m: Message, now: datetime) -> None:
            require_approver_scope(org, actor, m)
            if m.state not in PENDING:
                raise Conflict(N_("This warning is not waiting for publication."))
            m.fast_path = {"by": actor.name, "reason": reason, "at": now.isoformat()}

        await self._mutate(message_id, change, unschedule=True)
        return await self._publish(message_id, actor, states=PENDING)

    async def review(self, actor: Actor, message_id: str, comment: str) -> Message:
        _require(actor, "warning.review")
        comment = _comment(comment, "comment", required=True)
        org = await self.units.organisation()

        def change(m: Message, now: datetime) -> None:
            require_approver_scope(org, actor, m)
            if not m.needs_review:
                raise Conflict(N_("This warning does not need a review."))
            if m.fast_path and m.fast_path["by"] == actor.name:
                raise Forbidden(N_("Another chief must review a fast-path publication."))
            m.review = {"by": actor.name, "comment": comment, "at": now.isoformat()}

        message = await self._mutate(message_id, change)
        await self.audit.append(actor.label, "review", message.id, comment=comment)
        return message

    # update and cancel

    async def update(
        self, actor: Actor, message_id: str, body: Any, *, source: dict[str, str] | None = None
    ) -> Message:
        """An update of a published warning, submitted at once; a `source` updates once (as `create`)."""
        _require(actor, "warning.update")
        if source and (made := await self._made_by(source)):
            return made
        current = await self._current_published(message_id)
        org = await self.units.organisation()
        require_drafter_scope(org, actor, current)
        base = current.content
        if base.effective and base.effective <= self.now():
            base = replace(base, effective=None)  # an update takes effect when it is published
        content = self._parse(body, base=base)
        issuer = Issuer(issuing_unit(org, current), current.proposed_by)  # the thread keeps its unit
        require_inside(issuer.unit, self.registry, content)
        message = await self._new_message(
            actor, content, "Update", thread=current.thread, state=SUBMITTED, issuer=issuer, source=source
        )
        await self.audit.append(
            actor.label, "update", message.id, updates=current.id, grade=content.grade, **_unit_details(message)
        )
        await self._announce(message, org)
        return message

    async def cancel(self, actor: Actor, message_id: str, reason: str = "") -> Message:
        _require(actor, "warning.cancel")
        reason = _comment(reason, "reason", required=False)
        current = await self._current_published(message_id)
        org = await self.units.organisation()
        require_drafter_scope(org, actor, current)
        info = {}
        for tag, texts in current.content.info.items():
            locale = locale_for_tag(tag) or "en"
            lifted = self.catalogs.text(locale, N_("Lifted: %(headline)s"), headline=texts.headline)
            default = self.catalogs.text(locale, N_("This warning has been lifted."))
            info[tag] = InfoText(headline=lifted[:160], description=reason or default)
        content = replace(
            current.content,
            info=info,
            urgency="Past",
            certainty="Observed",
            response_type="AllClear",
            effective=None,
            onset=None,
        )
        issuer = Issuer(issuing_unit(org, current), current.proposed_by)
        message = await self._new_message(
            actor, content, "Cancel", thread=current.thread, state=SUBMITTED, issuer=issuer, note=reason
        )
        await self.audit.append(
            actor.label, "cancel", message.id, cancels=current.id, reason=reason, **_unit_details(message)
        )
        await self._announce(message, org)
        return message

    async def _announce(self, message: Message, org: Organisation) -> None:
        """Tell the listeners a message waits for approval. It is submitted whatever they do: a
        page that cannot be queued is logged, never the submission's failure."""
        if not self.on_submitted:
            return
        centre_chiefs = bool((await self.rules.quorum_for(message, org.root.id)).centre)
        for listener in self.on_submitted:
            try:
                await listener(message, centre_chiefs)
            except Exception:
                log.exception("could not page the approvers of %s", message.id)

    async def _current_published(self, message_id: str) -> Message:
        message = await self.get(message_id)
        thread = await self.thread(message.thread)
        if thread.status != ACTIVE or not thread.current:
            raise Conflict(N_("Only a warning in force can be updated or cancelled."))
        current = await self.get(thread.current)
        if current.content.expires <= self.now():
            raise Conflict(N_("Only a warning in force can be updated or cancelled."))
        return current

    # publication

    async def _release(self, message_id: str, actor: Actor) -> Message:
        """Publish now, or schedule when `effective` lies ahead."""
        message = await self.get(message_id)
        effective = message.content.effective
        if effective and effective > self.now():

            def schedule(m: Message, now: datetime) -> None:
                m.state = SCHEDULED

            message = await self._mutate(message_id, schedule, schedule_at=effective.timestamp())
            await self.audit.append(actor.label, "schedule", message.id, effective=effective.isoformat())
            return message
        return await self._publish(message_id, actor)

    async def _publish(
        self, message_id: str, actor: Actor, states: tuple[str, ...] = (SUBMITTED, SCHEDULED)
    ) -> Message:
        """Publish if the message is still in one of `states` (a reject may have come first)."""
        message = await self.get(message_id)
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(keys.warning(message_id), keys.thread(message.thread))
                    message = _stored(await pipe.get(keys.warning(message_id)))
                    thread_raw = await pipe.get(keys.thread(message.thread))
                    thread = Thread(**json.loads(thread_raw)) if thread_raw else Thread(message.thread)
                    now = self.now()
                    if message.state not in states:
                        return message
                    withdrawn = message.msg_type != "Alert" and (thread.status != ACTIVE or _expired(thread, now))
                    if withdrawn:
                        message.state = WITHDRAWN
                    else:
                        message.state, message.sent = PUBLISHED, now.isoformat()
                        message.references = list(thread.published)
                        thread.published.append(message.id)
                        thread.status = CANCELLED if message.msg_type == "Cancel" else ACTIVE
                        thread.grade = message.content.grade
                        thread.expires = message.content.expires.isoformat()
                    message.updated, message.rev = now.isoformat(), message.rev + 1
                    pipe.multi()
                    pipe.set(keys.warning(message.id), json.dumps(message.to_json(), ensure_ascii=False))
                    pipe.zrem(keys.WARNINGS_SCHEDULE, message.id)
                    if not withdrawn:
                        pipe.set(keys.thread(thread.id), json.dumps(thread.__dict__))
                        if thread.status == ACTIVE:
                            pipe.zadd(keys.WARNINGS_EXPIRY, {thread.id: message.content.expires.timestamp()})
                        else:
                            pipe.zrem(keys.WARNINGS_EXPIRY, thread.id)
                        pipe.xadd(
                            keys.WARNINGS_EVENTS,
                            {
                                "type": "published",
                                "id": message.id,
                                "thread": thread.id,
                                "msg_type": message.msg_type,
                            },
                            maxlen=EVENTS_MAXLEN,
                            approximate=True,
                        )
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        if message.state == WITHDRAWN:
            await self.audit.append(SYSTEM.label, "withdraw", message.id, reason="the warning is no longer in force")
        else:
            await self.audit.append(
                actor.label,
                "publish",
                message.id,
                msg_type=message.msg_type,
                fast_path=message.fast_path is not None,
                references=message.references,
                **_unit_details(message),
            )
            log.info("published %s (%s, %s)", message.id, message.msg_type, message.content.grade)
        await durable(
            self.redis, self.settings.redis_min_replicas, near=keys.WARNINGS_INDEX
        )  # the audit entry waited already
        return message

    async def run_due(self) -> int:
        """Publish scheduled messages whose time has come and expire lapsed warnings."""
        now = self.now()
        done = 0
        due = decoded_list(await self.redis.zrangebyscore(keys.WARNINGS_SCHEDULE, "-inf", now.timestamp()))
        for message_id in due:
            message = await self.get(message_id)
            if message.state == SCHEDULED:
                await self._publish(message_id, SYSTEM)
                done += 1
        lapsed = decoded_list(await self.redis.zrangebyscore(keys.WARNINGS_EXPIRY, "-inf", now.timestamp()))
        for thread_id in lapsed:
            if await self._expire(thread_id, now):
                done += 1
        return done

    async def _expire(self, thread_id: str, now: datetime) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(keys.thread(thread_id), keys.WARNINGS_EXPIRY)
                raw = await pipe.get(keys.thread(thread_id))
                thread = Thread(**json.loads(raw)) if raw else Thread(thread_id)
                score = await pipe.zscore(keys.WARNINGS_EXPIRY, thread_id)
                if thread.status != ACTIVE or score is None or score > now.timestamp():
                    return False
                thread.status = EXPIRED
                pipe.multi()
                pipe.set(keys.thread(thread_id), json.dumps(thread.__dict__))
                pipe.zrem(keys.WARNINGS_EXPIRY, thread_id)
                pipe.xadd(
                    keys.WARNINGS_EVENTS,
                    {
                        "type": "expired",
                        "id": thread.current or thread_id,
                        "thread": thread_id,
                        "msg_type": "",
                    },
                    maxlen=EVENTS_MAXLEN,
                    approximate=True,
                )
                await pipe.execute()
            except WatchError:
                return False  # someone else changed it; the next round looks again
        await self.audit.append(SYSTEM.label, "expire", thread.current or thread_id)
        return True

    # plumbing

    async def _mutate(
        self,
        message_id: str,
        change: Callable[[Message, datetime], None],
        *,
        unschedule: bool = False,
        schedule_at: float | None = None,
    ) -> Message:
        key = keys.warning(message_id)
        if not await self.redis.exists(key):
            raise NotFound(N_("No warning with this id."))
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    message = _stored(await pipe.get(key))
                    now = self.now()
                    change(message, now)
                    message.updated, message.rev = now.isoformat(), message.rev + 1
                    pipe.multi()
                    pipe.set(key, json.dumps(message.to_json(), ensure_ascii=False))
                    if unschedule:
                        pipe.zrem(keys.WARNINGS_SCHEDULE, message_id)
                    if schedule_at is not None:
                        pipe.zadd(keys.WARNINGS_SCHEDULE, {message_id: schedule_at})
                    await pipe.execute()
                    return message
                except WatchError:
                    continue


def _require(actor: Actor, action: str) -> None:
    if not allowed(actor.roles, action):
        raise Forbidden(N_("Your role does not allow this action."))


def _own_or_chief(actor: Actor, message: Message) -> None:
    if message.drafter != actor.name and "chief" not in actor.roles:
        raise Forbidden(N_("Only the drafter or a chief can change this draft."))


def _unit_details(message: Message) -> dict[str, str]:
    """What an audit entry records of the units involved, so the log can be read by unit."""
    details = {"unit": message.unit}
    if message.proposed_by:
        details["proposed_by"] = message.proposed_by
    return details


def _expired(thread: Thread, now: datetime) -> bool:
    return bool(thread.expires) and datetime.fromisoformat(thread.expires) <= now


def _comment(value: Any, field: str, *, required: bool) -> str:
    errs = Collector()
    text = clean_text(errs, field, value, 1000, required=required)
    if errs.errors:
        raise ValidationFailed(errs.errors)
    return text


def _stored(raw: str | bytes | None) -> Message:
    """A warning record read inside a transaction (records are never deleted: None means a wrong id)."""
    if raw is None:
        raise NotFound(N_("No warning with this id."))
    return Message.from_json(json.loads(raw))
