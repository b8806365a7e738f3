"""Approvers paged, escalated: a warning waiting for approval reaches the people who may approve it.

When a message is submitted (`Warnings.on_submitted`), every user who may approve it — an approver or
chief by role, whose unit is the warning's or above it (`publisher.scope`) — and who keeps a pager
(a Telegram chat or an SMS number, `warncast admin set-pager`) is paged on it: headline, grade, who
drafted it and a console link. When nobody has acted within the grade's `escalate_minutes`
(approval rules: red 5, orange 10, yellow 30 by default), the release centre's chiefs are paged.

Pages are queued on the notifier's durable stream (`keys.REPORT_NOTIFICATIONS`: the channel's rate,
retries, dead letters; outbox mode without credentials), each person once per message and step.
The waiting messages are kept in one sorted set by the time they were submitted, which the console
reads to show every pending approval with its age.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis

from foundation.access.audit import Actor
from foundation.access.auth import Accounts
from foundation.access.units import Organisation
from foundation.errors import Forbidden, NotFound
from foundation.i18n import N_, Catalogs, locale_for_tag
from foundation.store import keys
from foundation.store.streams import as_fields, decoded_list
from foundation.supervisor import beat
from publisher.approval_rules import escalate_seconds
from publisher.model import SUBMITTED, Message
from publisher.scope import require_approver_scope
from publisher.taxonomy import EVENTS, GRADE_NAMES
from publisher.workflow import Warnings

log = logging.getLogger(__name__)
PAGE_TEXT = N_('[Approve] %(grade)s %(event)s warning "%(headline)s", drafted by %(drafter)s. %(link)s')
ESCALATION_TEXT = N_(
    '[Waiting %(minutes)s min] %(grade)s %(event)s warning "%(headline)s", drafted by %(drafter)s: '
    "nobody has approved it yet. %(link)s"
)
PAGER_CHANNELS = ("sms", "telegram")
APPROVING_ROLES = frozenset({"approver", "chief"})
CHECK_SECONDS = 15.0  # how often the escalation loop looks at the waiting messages


class ApprovalPages:
    def __init__(self, redis: aioredis.Redis, warnings: Warnings, accounts: Accounts, catalogs: Catalogs) -> None:
        self.redis = redis
        self.warnings = warnings
        self.accounts = accounts
        self.catalogs = catalogs
        self._keep = warnings.settings.delivery_retention_days * 86400

    async def submitted(self, message: Message, centre_chiefs: bool) -> None:
        """A message waits for approval: note since when, and page who may approve it."""
        if message.state != SUBMITTED:
            return
        await self.redis.zadd(keys.APPROVALS_WAITING, {message.id: self.warnings.now().timestamp()}, nx=True)
        org = await self.warnings.units.organisation()
        approvers = [(a, ch, to) for a, ch, to in await self.accounts.pagers() if self._may_approve(org, a, message)]
        await self._page(message, approvers, f"submit:{message.rev}", PAGE_TEXT)

    async def waiting(self) -> list[tuple[Message, float]]:
        """Every message waiting for approval, oldest first, with how long it has waited (seconds);
        what has left the queue meanwhile (approved, rejected, withdrawn) is dropped from it."""
        entries: list[Any] = await self.redis.zrange(keys.APPROVALS_WAITING, 0, -1, withscores=True)
        now = self.warnings.now().timestamp()
        found: list[tuple[Message, float]] = []
        gone: list[str] = []
        for raw_id, since in entries:
            message_id = decoded_list([raw_id])[0]
            try:
                message = await self.warnings.get(message_id)
            except NotFound:  # a message that no longer exists
                gone.append(message_id)
                continue
            if message.state != SUBMITTED:
                gone.append(message_id)
                continue
            found.append((message, max(0.0, now - float(since))))
        if gone:
            await self.redis.zrem(keys.APPROVALS_WAITING, *gone)
        return found

    async def escalate(self) -> int:
        """Page the release centre's chiefs for every message that has waited past its grade's
        limit (once per message); returns how many messages were escalated now."""
        rules = await self.warnings.rules.all()
        overdue = [(m, waited) for m, waited in await self.waiting() if waited >= escalate_seconds(rules, m)]
        if not overdue:
            return 0
        org = await self.warnings.units.organisation()
        chiefs = [
            (a, ch, to)
            for a, ch, to in await self.accounts.pagers()
            if "chief" in a.roles and (a.unit or org.root.id) == org.root.id
        ]
        escalated = 0
        for message, waited in overdue:
            if await self._page(message, chiefs, "escalate", ESCALATION_TEXT, minutes=int(waited // 60)):
                escalated += 1
        return escalated

    async def run(self) -> None:
        """The escalation loop (one per process; the pages themselves are sent once)."""
        while True:
            await self.escalate()
            beat()
            await asyncio.sleep(CHECK_SECONDS)

    def _may_approve(self, org: Organisation, actor: Actor, message: Message) -> bool:
        if not actor.roles & APPROVING_ROLES or actor.name == message.drafter:
            return False
        try:
            require_approver_scope(org, actor, message)
        except Forbidden:
            return False
        return True

    async def _page(
        self, message: Message, people: Iterable[tuple[Actor, str, str]], step: str, text: str, **extra: object
    ) -> int:
        """Queue one page per person (each once per message and step); returns how many were queued."""
        link = f"{self.warnings.settings.public_url}/console/warnings/{message.id}"
        queued = 0
        for actor, channel, address in people:
            if channel not in PAGER_CHANNELS:
                continue
            marker = keys.duty_page(f"approval:{message.id}:{step}:user:{actor.name}")
            if not await self.redis.set(marker, "1", nx=True, ex=self._keep):
                continue  # paged already (another process, or an earlier pass)
            first = self.warnings.settings.languages[0]  # the office's own language
            locale = locale_for_tag(first) or "zh_Hans"
            tag = first if first in message.content.info else next(iter(message.content.info))
            info = message.content.info[tag]
            body = self.catalogs.text(
                locale,
                text,
                grade=self.catalogs.text(locale, GRADE_NAMES[message.content.grade]),
                event=self.catalogs.text(locale, EVENTS[message.content.event].name),
                headline=info.headline,
                drafter=drafted_by(message, self.catalogs, locale, tag),
                link=link,
                **extra,
            )
            fields = {
                "channel": channel,
                "address": address,
                "locale": locale,
                "tracking_code": message.id,
                "status": "approval",
                "text": body,
            }
            await self.redis.xadd(keys.REPORT_NOTIFICATIONS, as_fields(fields))
            queued += 1
        return queued


def drafted_by(message: Message, catalogs: Catalogs, locale: str, tag: str) -> str:
    """Who drafted a message, as a page names them: the user, or the threshold plan that drafted it."""
    if message.source.get("kind") != "plan":
        return message.drafter
    name = message.source.get(f"name.{tag}") or message.source.get("plan", "")
    return catalogs.text(locale, N_("threshold plan %(name)s"), name=name)
