"""Pages to duty groups: an approval waiting on a unit, an incident routed to a unit.

A page is a ready text per group, queued on the durable notification stream the dispatch's
notifier already sends from (`keys.REPORT_NOTIFICATIONS`: retries, dead letters, the channel's
rate), addressed to the group on its tool's channel. Each subject is paged once per unit
(`keys.duty_page`, kept for the delivery retention), whichever process sees it first. The incident
follower reads the board's events from when it starts: an incident routed while no process ran it
is on the board, not paged.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from channels.duty_groups.registry import DutyGroups
from citizen_report.desk import ReportDesk
from citizen_report.incidents import Incident, load_incident
from foundation.access.units import Organisation, Units
from foundation.i18n import N_, Catalogs, locale_for_tag
from foundation.settings import Settings
from foundation.store import keys
from foundation.store.streams import as_fields, read_entries
from foundation.supervisor import beat
from publisher.model import SUBMITTED, Message
from publisher.taxonomy import EVENTS, GRADE_NAMES

log = logging.getLogger(__name__)
APPROVAL_TEXT = N_('[To approve] %(unit)s: %(grade)s %(event)s warning "%(headline)s". %(link)s')
INCIDENT_TEXT = N_("[Incident for %(unit)s] %(title)s (priority %(priority)s). %(link)s")


async def page_groups(
    redis: aioredis.Redis,
    unit: str,
    receives: str,
    subject: str,
    texts: dict[str, str],
    reference: str,
    *,
    keep_seconds: int,
) -> int:
    """Queue one page per group of `unit` that takes `receives`; `texts` by BCP 47 tag."""
    groups = await DutyGroups(redis).of_unit(unit, receives)
    if not groups or not await redis.set(keys.duty_page(f"{subject}:{unit}"), "1", nx=True, ex=keep_seconds):
        return 0  # nobody to page, or paged already
    for group in groups:
        text = texts.get(group.lang) or next(iter(texts.values()))
        fields = {
            "channel": group.tool,
            "address": group.id,
            "locale": locale_for_tag(group.lang) or "zh_Hans",
            "tracking_code": reference,
            "status": receives,
            "text": text,
        }
        await redis.xadd(keys.REPORT_NOTIFICATIONS, as_fields(fields))
    return len(groups)


def approving_units(org: Organisation, message: Message, centre_chiefs: bool) -> list[str]:
    """Who a submitted message waits on: its unit, and the release centre when a chief of the
    centre must approve it."""
    unit = message.unit or org.root.id
    return list(dict.fromkeys([unit, *([org.root.id] if centre_chiefs else [])]))


class Pager:
    """What the composition root hands the workflow and runs as a loop: approval pages when a
    message is submitted, incident pages when the monitoring centre routes an incident to a unit."""

    def __init__(self, redis: aioredis.Redis, settings: Settings, catalogs: Catalogs) -> None:
        self.redis = redis
        self.settings = settings
        self.catalogs = catalogs
        self.units = Units(redis, settings)
        self._keep = settings.delivery_retention_days * 86400  # like the notifications themselves

    async def submitted(self, message: Message, centre_chiefs: bool) -> None:
        """Page the units a message just submitted (or an update or cancellation) waits on."""
        if message.state != SUBMITTED:
            return
        org = await self.units.organisation()
        link = f"{self.settings.public_url}/console/warnings/{message.id}"
        unit = org.find(message.unit) or org.root
        for target in approving_units(org, message, centre_chiefs):
            texts = {}
            for tag in self.settings.languages:
                locale = locale_for_tag(tag) or "en"
                info = message.content.info.get(tag) or next(iter(message.content.info.values()))
                texts[tag] = self.catalogs.text(
                    locale,
                    APPROVAL_TEXT,
                    unit=unit.name_in(tag),
                    grade=self.catalogs.text(locale, GRADE_NAMES[message.content.grade]),
                    event=self.catalogs.text(locale, EVENTS[message.content.event].name),
                    headline=info.headline,
                    link=link,
                )
            subject = f"message:{message.id}:{message.rev}"
            await page_groups(self.redis, target, "approvals", subject, texts, message.id, keep_seconds=self._keep)

    async def incident(self, incident: Incident) -> None:
        org = await self.units.organisation()
        unit = org.find(incident.department or "") if org.configured else None
        if unit is None:
            return
        link = f"{self.settings.public_url}/console/triage#incident-{incident.id}"
        texts = {
            tag: self.catalogs.text(
                locale_for_tag(tag) or "en",
                INCIDENT_TEXT,
                unit=unit.name_in(tag),
                title=incident.title or incident.category,
                priority=incident.priority,
                link=link,
            )
            for tag in self.settings.languages
        }
        subject = f"incident:{incident.id}"
        await page_groups(self.redis, unit.id, "incidents", subject, texts, incident.id, keep_seconds=self._keep)

    async def follow_incidents(self, desk: ReportDesk, *, block_ms: int = 1000) -> None:
        """Page the unit each new or re-routed incident goes to (the live board's event stream)."""
        last = "$"
        while True:
            found = read_entries(await self.redis.xread({keys.BOARD_EVENTS: last}, block=block_ms, count=50))
            beat()
            for entry_id, fields in found:
                last = entry_id
                incident = await load_incident(desk, (fields or {}).get("incident", ""))
                if incident is not None:
                    await self.incident(incident)
