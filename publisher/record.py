"""The city's record of its warnings: what was warned of, how fast it was released and delivered,
and each warning's after-action timeline.

Figures come from what is kept: the warnings themselves (kept forever, indexed by creation time) and
one small `delivery_record` hash per delivery plan, which the planner, the workers and the receipts
write beside the delivery statistics and which outlives them (the statistics expire with the
retention, publisher/dispatch/retention.py). Its fields: `published_at` and `kind`, and per channel
`{ch}.planned`, `{ch}.first_at`, `{ch}.last_at` (epoch ms), `{ch}.delivered`, `{ch}.failed` and
`{ch}.receipt_at` (receipts). A year is read in a few round trips however long the history.

Drills and tests (CAP status Exercise or Test) are left out of the figures; a message published at a
time the drafter set ahead (a scheduled `effective`) is left out of the release times, since it
waited by design.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from foundation.access.audit import AuditLog
from foundation.figures import Timing, timing
from foundation.i18n import N_
from foundation.store import keys
from foundation.store.raw_pipeline import execute_raw
from foundation.store.streams import as_fields, decoded_hash, decoded_list
from publisher.model import EXPIRED, Message, Thread
from publisher.policy import PUSH_CHANNELS
from publisher.taxonomy import GRADES

RECORD_CHANNELS = (*PUSH_CHANNELS, "partner")  # partner webhooks: channels.partners
# Draft to publication, per grade: China's practice for the most severe warnings is "signed off and
# published within 5 minutes". Grades without a target here show their times only.
RELEASE_TARGET_SECONDS = {"red": 300}
DELIVERY_TARGET_SECONDS = 600  # every recipient of a plan reached within 10 minutes of publication
BATCH = 500  # keys per MGET / pipeline


@dataclass
class WarningRecord:
    year: int
    by_grade: dict[str, int]  # warnings (first messages) per grade, in GRADES order
    by_event: dict[str, int]  # event code -> warnings, most first
    by_month: dict[int, dict[str, int]]  # month 1..12 -> grade -> warnings
    release: dict[str, Timing]  # grade -> seconds from draft to publication (alerts and updates)
    first_delivery: dict[str, Timing]  # channel -> seconds from publication to its first delivery
    last_delivery: dict[str, Timing]  # channel -> seconds from publication to its last delivery
    warnings: list[dict[str, Any]] = field(default_factory=list)  # one row per warning, newest first


def year_bounds(year: int, tz: ZoneInfo) -> tuple[float, float]:
    return datetime(year, 1, 1, tzinfo=tz).timestamp(), datetime(year + 1, 1, 1, tzinfo=tz).timestamp()


SUMMARY_FIELDS = ("id", "thread", "msg_type", "created", "sent")
FINAL = ("published", "withdrawn")  # states a message never leaves


def _summary(msg: dict[str, Any]) -> dict[str, Any]:
    content = msg["content"]
    return {
        **{name: msg.get(name) for name in SUMMARY_FIELDS},
        "grade": content["grade"],
        "event": content["event"],
        "status": content.get("status", "Actual"),
        "as_drafted": _released_as_drafted(msg),
    }


async def _messages(redis: aioredis.Redis, year: int, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The summaries of the messages drafted in `year`. A message once published (or withdrawn)
    never changes, so its summary is kept in the year's `warning_summaries` the first time it is
    read; only the others (drafts, pending) are read in full each time."""
    start, end = year_bounds(year, tz)
    ids = decoded_list(await redis.zrangebyscore(keys.WARNINGS_INDEX, start, f"({end}"))
    known = {i: json.loads(raw) for i, raw in decoded_hash(await redis.hgetall(keys.warning_summaries(year))).items()}
    found = [known[i] for i in ids if i in known]
    missing = [i for i in ids if i not in known]
    learned: dict[str, str] = {}
    for n in range(0, len(missing), BATCH):
        for raw in await redis.mget([keys.warning(i) for i in missing[n : n + BATCH]]):
            if raw:
                msg = json.loads(raw)
                found.append(summary := _summary(msg))
                if msg["state"] in FINAL:
                    learned[msg["id"]] = json.dumps(summary, ensure_ascii=False)
    if learned:
        await redis.hset(keys.warning_summaries(year), mapping=as_fields(learned))
    return found


async def _delivery_records(redis: aioredis.Redis, plan_ids: list[str]) -> dict[str, dict[str, str]]:
    """The timing fields of the delivery records of `plan_ids`, as raw HMGETs in one round trip (per
    node): a year's plans cost milliseconds, not the per-command cost of a client pipeline."""
    names = ["published_at", *(f"{ch}.{at}" for ch in RECORD_CHANNELS for at in ("first_at", "last_at"))]
    replies = await execute_raw(redis, [("HMGET", keys.delivery_record(p), *names) for p in plan_ids])
    found: dict[str, dict[str, str]] = {}
    for plan_id, values in zip(plan_ids, replies, strict=True):
        if isinstance(values, Exception):
            raise values
        if any(values):
            found[plan_id] = {k: _text(v) for k, v in zip(names, values, strict=True) if v is not None}
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _full_delivery_records(redis: aioredis.Redis, plan_ids: list[str]) -> dict[str, dict[str, str]]:
    async with redis.pipeline(transaction=False) as pipe:
        for plan_id in plan_ids:
            pipe.hgetall(keys.delivery_record(plan_id))
        return {p: raw for p, raw in zip(plan_ids, await pipe.execute(), strict=True) if raw}


def _seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def _released_as_drafted(msg: dict[str, Any]) -> bool:
    """Published as soon as approved: not held back to an `effective` time the drafter set ahead."""
    effective = msg["content"].get("effective")
    return not effective or datetime.fromisoformat(effective) <= datetime.fromisoformat(msg["created"])


async def warning_record(redis: aioredis.Redis, year: int, tz: ZoneInfo) -> WarningRecord:
    messages = [m for m in await _messages(redis, year, tz) if m["status"] == "Actual"]
    published = [m for m in messages if m.get("sent")]
    alerts = [m for m in published if m["msg_type"] == "Alert"]
    by_grade = Counter(m["grade"] for m in alerts)
    by_month: dict[int, dict[str, int]] = {month: dict.fromkeys(GRADES, 0) for month in range(1, 13)}
    for m in alerts:
        by_month[datetime.fromisoformat(m["sent"]).astimezone(tz).month][m["grade"]] += 1
    release: dict[str, list[float]] = defaultdict(list)
    for m in published:
        if m["msg_type"] in ("Alert", "Update") and m["as_drafted"]:
            release[m["grade"]].append(_seconds(m["sent"], m["created"]))

    # Expiry notices go out for orange and red warnings only (publisher/dispatch/planner.py).
    plan_ids = [m["id"] for m in published]
    plan_ids += [f"{m['id']}:expired" for m in published if m["grade"] in ("orange", "red")]
    records = await _delivery_records(redis, plan_ids)
    first: dict[str, list[float]] = defaultdict(list)
    last: dict[str, list[float]] = defaultdict(list)
    for record in records.values():
        published_ms = int(record.get("published_at", 0))
        for ch in RECORD_CHANNELS:
            if published_ms and (first_ms := int(record.get(f"{ch}.first_at", 0))):
                first[ch].append(max(0.0, (first_ms - published_ms) / 1000))
                last[ch].append(max(0.0, (int(record.get(f"{ch}.last_at", first_ms)) - published_ms) / 1000))

    threads: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in published:
        threads[m["thread"]].append(m)
    rows = []
    for m in sorted(alerts, key=lambda a: a["sent"], reverse=True):
        versions = sorted(threads[m["id"]], key=lambda v: v["sent"])
        rows.append(
            {
                "id": m["id"],
                "grade": m["grade"],
                "event": m["event"],
                "sent": m["sent"],
                "release_seconds": _seconds(m["sent"], m["created"]) if m["as_drafted"] else None,
                "updates": sum(1 for v in versions if v["msg_type"] == "Update"),
                "cancelled": any(v["msg_type"] == "Cancel" for v in versions),
            }
        )
    return WarningRecord(
        year=year,
        by_grade={g: by_grade.get(g, 0) for g in GRADES},
        by_event=dict(Counter(m["event"] for m in alerts).most_common()),
        by_month=by_month,
        release={g: timing(release[g], RELEASE_TARGET_SECONDS.get(g)) for g in GRADES},
        first_delivery={ch: timing(first[ch], DELIVERY_TARGET_SECONDS) for ch in RECORD_CHANNELS},
        last_delivery={ch: timing(last[ch], DELIVERY_TARGET_SECONDS) for ch in RECORD_CHANNELS},
        warnings=rows,
    )


# ---------------------------------------------------------------------------------------------
# The after-action timeline of one warning.

STEP_NAMES = {
    "drafted": N_("Drafted"),
    "update_drafted": N_("Update drafted"),
    "cancel_drafted": N_("Cancellation drafted"),
    "submitted": N_("Submitted for approval"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "scheduled": N_("Scheduled"),
    "fast_path": N_("Emergency fast path"),
    "reviewed": N_("Fast path reviewed"),
    "published": N_("Published"),
    "update_published": N_("Update published"),
    "cancel_published": N_("Cancellation published: warning lifted"),
    "withdrawn": N_("Withdrawn unpublished"),
    "first_delivery": N_("First delivery"),
    "last_delivery": N_("Last delivery"),
    "receipts": N_("Delivery receipts"),
    "expired": N_("Expired"),
    "expiry_first_delivery": N_("Expiry notice: first delivery"),
    "expiry_last_delivery": N_("Expiry notice: last delivery"),
}
STEP_ORDER = list(STEP_NAMES)  # the order above is the order they happen in
# Audit action -> the step it stands behind.
AUDIT_STEPS = {
    "create": "drafted",
    "update": "update_drafted",
    "cancel": "cancel_drafted",
    "submit": "submitted",
    "approve": "approved",
    "reject": "rejected",
    "schedule": "scheduled",
    "review": "reviewed",
    "publish": "published",
    "withdraw": "withdrawn",
    "expire": "expired",
}
AUDIT_ONLY = ("submit", "reject", "schedule", "withdraw", "expire")  # steps no message field records


@dataclass
class Step:
    at: str  # ISO 8601
    what: str  # a key of STEP_NAMES
    message: str  # the message it concerns
    who: str = ""
    channel: str = ""
    note: str = ""  # a comment or reason, as written
    seconds: float | None = None  # since the message's publication (deliveries), or its draft
    counts: dict[str, int] = field(default_factory=dict)
    audit: int | None = None  # seq of the audit entry behind it

    def order(self, messages: list[str]) -> tuple[int, int, int]:
        """Whole seconds, then the message's place in the thread, then the order steps take: messages
        carry whole-second stamps while the audit log and the deliveries carry milliseconds, so
        within one second the logical order decides (a submission before its approval, a
        publication before its first delivery)."""
        place = messages.index(self.message) if self.message in messages else len(messages)
        return int(datetime.fromisoformat(self.at).timestamp()), place, STEP_ORDER.index(self.what)


@dataclass
class Timeline:
    thread: Thread
    messages: list[Message]
    steps: list[Step]
    audit: list[dict[str, Any]]


def _name(actor_label: str) -> str:
    """The name in an audit entry's actor (`Actor.label`: "token:wang" for a machine token)."""
    return actor_label.rsplit(":", 1)[-1]


def _ms_iso(ms: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="milliseconds")


def _message_steps(m: Message) -> list[Step]:
    kind = {"Alert": "", "Update": "update_", "Cancel": "cancel_"}[m.msg_type]
    steps = [Step(m.created, f"{kind}drafted", m.id, m.drafter, note=m.note)]
    steps += [Step(a.at, "approved", m.id, a.user, note=a.comment) for a in m.approvals]
    if m.fast_path:
        steps.append(Step(m.fast_path["at"], "fast_path", m.id, m.fast_path["by"], note=m.fast_path["reason"]))
    if m.review:
        steps.append(Step(m.review["at"], "reviewed", m.id, m.review["by"], note=m.review["comment"]))
    if m.sent:
        steps.append(Step(m.sent, f"{kind}published", m.id, seconds=_seconds(m.sent, m.created)))
    return steps


def _delivery_steps(plan_id: str, message_id: str, record: dict[str, str], tz: ZoneInfo) -> list[Step]:
    published_ms = int(record.get("published_at", 0))
    prefix = "expiry_" if plan_id.endswith(":expired") else ""
    steps = []
    for ch in RECORD_CHANNELS:
        first_ms, last_ms = int(record.get(f"{ch}.first_at", 0)), int(record.get(f"{ch}.last_at", 0))
        for what, ms in (("first_delivery", first_ms), ("last_delivery", last_ms or first_ms)):
            if ms:
                seconds = (ms - published_ms) / 1000 if published_ms else None
                counts = {"planned": int(record.get(f"{ch}.planned", 0))}
                steps.append(
                    Step(_ms_iso(ms, tz), prefix + what, message_id, channel=ch, seconds=seconds, counts=counts)
                )
        delivered, failed = int(record.get(f"{ch}.delivered", 0)), int(record.get(f"{ch}.failed", 0))
        if delivered or failed:
            at_ms = int(record.get(f"{ch}.receipt_at", 0)) or last_ms
            counts = {"delivered": delivered, "failed": failed}
            steps.append(Step(_ms_iso(at_ms, tz), "receipts", message_id, channel=ch, counts=counts))
    return steps


async def timeline(redis: aioredis.Redis, audit: AuditLog, first: Message, tz: ZoneInfo) -> Timeline:
    """Everything that happened to the warning `first` belongs to, oldest first, with the audit
    entries behind each step."""
    raw = await redis.get(keys.thread(first.thread))
    thread = Thread(**json.loads(raw)) if raw else Thread(first.thread)
    ids = list(dict.fromkeys([first.thread, *thread.published, first.id]))
    raws = await redis.mget([keys.warning(i) for i in ids])
    messages = [Message.from_json(json.loads(r)) for r in raws if r]
    entries = await audit.about([m.id for m in messages])
    steps = [step for m in messages for step in _message_steps(m)]
    for m in messages:
        if m.sent:
            records = await _full_delivery_records(redis, [m.id, f"{m.id}:expired"])
            for plan_id, record in records.items():
                steps += _delivery_steps(plan_id, m.id, record, tz)
    for entry in entries:
        action = entry["action"]
        step = AUDIT_STEPS.get(action)
        if step is None:
            continue
        if action in AUDIT_ONLY:
            details = entry.get("details") or {}
            note = str(details.get("comment") or details.get("reason") or "")
            steps.append(Step(entry["at"], step, entry["target"], entry["actor"], note=note, audit=entry["seq"]))
            continue
        for candidate in steps:  # the message-derived step this entry records
            if (
                candidate.audit is None
                and candidate.message == entry["target"]
                and candidate.what.removeprefix("update_").removeprefix("cancel_") == step.split("_")[-1]
                and (not candidate.who or action == "publish" or _name(entry["actor"]) == candidate.who)
            ):
                candidate.audit = entry["seq"]
                if action == "publish":
                    candidate.who = entry["actor"]
                break
    if thread.status == EXPIRED and not any(s.what == "expired" for s in steps) and messages:
        current = next((m for m in messages if m.id == thread.current), messages[-1])
        steps.append(Step(current.content.expires.isoformat(), "expired", current.id))
    order = [m.id for m in messages]
    steps.sort(key=lambda s: s.order(order))
    return Timeline(thread, messages, steps, entries)
