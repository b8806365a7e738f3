"""`submit_report`: the one way a report enters the service, whatever channel it came by.

Order of work: every field is validated (all errors together, in the reporter's language, nothing
written); photos, if any, are decoded and re-encoded off the event loop, after a replay check and
the rate limits; then one atomic script, in one round trip, answers an idempotent replay, counts the
sender against the rate limits, allocates the report id and writes the report, its idempotency
key, the monitoring-queue item and the "received" notification. Redis appends that write to its AOF
before it replies, so a report we acknowledged survives a crash of Redis or of this process.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
from typing import Any, NamedTuple

import orjson

from citizen_report.acknowledgements import receipt
from citizen_report.desk import ReportDesk
from citizen_report.intake_limits import IP_LIMITED, rate_limits, seen_or_count, too_many
from citizen_report.model import (
    CATEGORIES,
    LIFE_SAFETY_WORDS,
    RECEIVED,
    REPLY_CHANNELS,
    Report,
    ReportInput,
    new_tracking_code,
    report_item_fields,
)
from citizen_report.notify import flatten, pushed
from citizen_report.photos import CleanPhoto, clean_photos
from foundation.errors import Conflict, FieldError, ValidationFailed
from foundation.i18n import N_, normalize_locale
from foundation.phones import PhoneError, normalize_phone
from foundation.store import keys
from foundation.store.batched_script import BatchedScript
from foundation.store.durable import durable
from foundation.store.scripts import script
from foundation.store.streams import decoded
from foundation.text import without_bidi

EMAIL = re.compile(r"^[^@\s<>]{1,64}@[^@\s<>]{1,190}\.[^@\s<>]{2,}$")
LIFE_SAFETY_TEXT = re.compile("|".join(map(re.escape, LIFE_SAFETY_WORDS)))  # lower-case words, lower-cased text
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")  # not valid in XML

# Atomic intake in one round trip: replay check, rate-limit counters and every write
# (foundation/store/lua/report_intake.lua says what its KEYS and ARGV are). The report's id is
# reserved before (`ReportDesk.next_report_id`, a block at a time), so its key is declared in KEYS
# like every other; all of them carry the {reports} hash tag: one cluster slot.
_INTAKE = script("report_intake")
_NO_IDEMPOTENCY_KEY = keys.report_idempotency("-")


class Submitted(NamedTuple):
    report: Report
    replayed: bool  # True: an earlier submission with the same idempotency key


async def submit_report(desk: ReportDesk, data: ReportInput, *, idempotency_key: str | None = None) -> Submitted:
    redis = desk.redis
    idem_key = _idempotency_key(data, idempotency_key)
    fingerprint = _fingerprint(data) if idem_key else ""
    fields, errors = validate(desk, data)
    if errors:
        if idem_key and (stored := await redis.get(idem_key)):  # a retry after the rules changed
            return await _replay(desk, decoded(stored), fingerprint)
        raise ValidationFailed(errors)
    sender = data.address_for_replies or (data.phone if isinstance(data.phone, str) else "")
    client = data.client if data.channel in IP_LIMITED else ""
    now = desk.stamp()
    limits = rate_limits(desk.config, now.epoch, client, _sender_key(sender))
    photos: list[CleanPhoto] = []
    if data.photos:
        # Decoding photos costs CPU: answer a replay and count the sender before doing it.
        if stored := await seen_or_count(redis, idem_key, limits):
            return await _replay(desk, stored, fingerprint)
        limits = []  # counted
        photos, photo_errors = await asyncio.to_thread(clean_photos, data.photos, desk.config)
        if photo_errors:
            raise ValidationFailed(photo_errors)
    _locate(desk, fields, photos, bool(data.photo_location))
    if fields["lat"] is None and not fields["area"] and not fields["address"]:
        raise ValidationFailed([_no_location()])
    for photo in photos:  # content-addressed, so a retry rewrites the same keys
        await redis.set(keys.report_photo(photo.id), base64.b64encode(photo.jpeg).decode())
    tracking_code = new_tracking_code()
    record = {  # the report as stored, but for its id, which the intake script allocates
        **fields,
        "tracking_code": tracking_code,
        "photos": [p.id for p in photos],
        "created": now.iso,
        "updated": now.iso,
        "status": RECEIVED,
        "status_note": "",
        "incident": None,
        "department": None,
        "history": [{"status": RECEIVED, "at": now.iso, "note": ""}],
    }
    report_id = await desk.next_report_id()
    report = Report(id=report_id, **record)
    item = report_item_fields(report)
    notice = receipt(desk.text_env, desk.catalogs, report, desk.settings.public_url) if pushed(report) else {}
    if desk.intake_script is None:
        # Each batch waits for the replicas once (WAIT), for all of its reports: 201 only once they have it.
        desk.intake_script = BatchedScript(
            redis, _INTAKE, replicas=desk.settings.redis_min_replicas, near=keys.REPORTS_INDEX
        )
    outcome = await desk.intake_script(
        keys=[
            idem_key or _NO_IDEMPOTENCY_KEY,  # not touched without a fingerprint
            keys.report(report_id),
            keys.REPORTS_BY_TRACKING,
            keys.REPORTS_INDEX,
            keys.MONITORING_QUEUE,
            keys.REPORT_NOTIFICATIONS,
            *(limit.key for limit in limits),
        ],
        args=[
            fingerprint,
            report_id,
            orjson.dumps({"id": report_id, **record}),
            tracking_code,
            desk.config.idempotency_hours * 3600,
            now.epoch,
            len(item),
            *item,
            *(number for limit in limits for number in (limit.limit, limit.window)),
            *flatten(notice),
        ],
    )
    if isinstance(outcome, str):  # a concurrent retry won the race
        return await _replay(desk, outcome, fingerprint)
    if outcome < 0:
        too_many(limits[-outcome - 1])
    return Submitted(report, replayed=False)


async def load_report(desk: ReportDesk, report_id: str) -> Report | None:
    raw = await desk.redis.get(keys.report(report_id))
    return Report.from_record(json.loads(raw)) if raw else None


async def load_reports(desk: ReportDesk, report_ids: list[str]) -> dict[str, Report]:
    """The reports of `report_ids` that exist, in one round trip (every report is in one hash slot)."""
    if not report_ids:
        return {}
    raws = await desk.redis.mget([keys.report(i) for i in report_ids])
    return {i: Report.from_record(json.loads(raw)) for i, raw in zip(report_ids, raws, strict=True) if raw}


async def _replay(desk: ReportDesk, stored: str, fingerprint: str) -> Submitted:
    report_id, _, first_fingerprint = stored.partition("|")
    if first_fingerprint != fingerprint:
        raise Conflict(N_("This idempotency key was already used for a different report."))
    report = await load_report(desk, report_id)
    if report is None:  # pragma: no cover - the key and the report are written in one script
        raise Conflict(N_("This idempotency key was already used for a different report."))
    await durable(
        desk.redis, desk.settings.redis_min_replicas, near=keys.REPORTS_INDEX
    )  # the first try may have answered 503
    return Submitted(report, replayed=True)


def _idempotency_key(data: ReportInput, given: str | None) -> str | None:
    if not given:
        return None
    if len(given) > 200:
        raise ValidationFailed(
            [FieldError("Idempotency-Key", "too_long", N_("At most %(max)s characters."), {"max": 200})]
        )
    # Scoped by channel so an SMS id can never collide with a web form's key.
    return keys.report_idempotency(hashlib.sha256(f"{data.channel}\0{given}".encode()).hexdigest()[:40])


def _fingerprint(data: ReportInput) -> str:
    """What makes two submissions "the same report" for an idempotency key."""
    photos = tuple(hashlib.sha256(p.data).hexdigest() for p in data.photos)
    # The repr of a tuple of text, numbers and None tells any two different tuples apart.
    parts = (data.category, data.description, data.lat, data.lon, data.area, data.address, photos)
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def validate(desk: ReportDesk, data: ReportInput) -> tuple[dict[str, Any], list[FieldError]]:
    """Every field checked; returns the clean fields of a Report and the list of problems."""
    config, registry = desk.config, desk.registry
    errors: list[FieldError] = []
    if data.honeypot:
        errors.append(FieldError("website", "honeypot", N_("Leave this field empty.")))
    category = data.category if isinstance(data.category, str) else None
    if not category:
        errors.append(FieldError("category", "required", N_("Choose what kind of hazard it is.")))
    elif category not in CATEGORIES:
        errors.append(FieldError("category", "unknown", N_("Choose one of the listed categories.")))
    description = _text(data.description, "description", errors)
    if description is not None and len(description) < config.min_description:
        errors.append(
            FieldError(
                "description",
                "too_short",
                N_("Describe what you see in at least %(min)s characters."),
                {"min": config.min_description},
            )
        )
    elif description is not None and len(description) > config.max_description:
        errors.append(
            FieldError("description", "too_long", N_("At most %(max)s characters."), {"max": config.max_description})
        )
    lat, lon = _coordinates(data.lat, data.lon, errors)
    area = _text(data.area, "area", errors) or None
    if area and registry.get(area) is None:
        errors.append(FieldError("area", "unknown", N_("Choose an area from the list.")))
    address = _text(data.address, "address", errors) or ""
    if len(address) > config.max_address:
        errors.append(FieldError("address", "too_long", N_("At most %(max)s characters."), {"max": config.max_address}))
    photo_may_locate = bool(data.photos) and _truthy(data.photo_location)
    if lat is None and not area and not address and not photo_may_locate and not _has(errors, "lat", "lon"):
        errors.append(_no_location())
    phone = _phone(data.phone, errors)
    email = _text(data.email, "contact.email", errors) or None
    if email and (len(email) > 254 or not EMAIL.match(email)):
        errors.append(FieldError("contact.email", "format", N_("This is not an e-mail address.")))
    reply_channel, reply_address = _reply(data, phone, errors)
    if (phone or email) and data.channel in ("web", "api") and not _truthy(data.consent):
        errors.append(
            FieldError("consent", "required", N_("Agree that we may keep your contact details to reply to you."))
        )
    locale = normalize_locale(data.locale) or "zh_Hans"
    life_safety = (
        bool(category in CATEGORIES and CATEGORIES[category].life_safety)
        or _truthy(data.people_at_risk)
        or LIFE_SAFETY_TEXT.search((description or "").lower()) is not None
    )
    contact = {k: v for k, v in (("phone", phone), ("email", email)) if v}
    fields = {
        "category": category,
        "description": description or "",
        "lat": lat,
        "lon": lon,
        "area": area,
        "address": address,
        "location_source": "device" if lat is not None else ("area" if area else "address"),
        "channel": data.channel,
        "reply_channel": reply_channel,
        "reply_address": reply_address,
        "contact": contact,
        "locale": locale,
        "life_safety": life_safety,
    }
    return fields, errors


def _has(errors: list[FieldError], *fields: str) -> bool:
    return any(e.field in fields for e in errors)


def _no_location() -> FieldError:
    return FieldError(
        "location", "required", N_("Say where it is: use your location, choose an area or type an address.")
    )


def _locate(desk: ReportDesk, fields: dict[str, Any], photos: list[CleanPhoto], photo_allowed: bool) -> None:
    """Fill in the point: the photo's GPS tag if allowed and nothing better, else the area's centre."""
    registry = desk.registry
    if fields["lat"] is None and photo_allowed:
        tagged = next((p.gps for p in photos if p.gps), None)
        if tagged:
            fields["lat"], fields["lon"] = tagged
            fields["location_source"] = "photo"
    if fields["lat"] is not None:
        # The device's (or photo's) point wins over an area picked from the list: a resident in
        # Binjiang who left "Yunling" selected is in Binjiang. A pick that holds the point is kept.
        inside = registry.containing(fields["lat"], fields["lon"])
        if inside and fields["area"] not in {a.code for a in inside}:
            fields["area"] = inside[-1].code
    elif fields["lat"] is None and fields["area"]:
        fields["lat"], fields["lon"] = registry.by_code[fields["area"]].point


def _text(value: Any, field: str, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(field, "type", N_("Must be text.")))
        return None
    return without_bidi(CONTROL.sub("", value)).strip()


def _coordinates(lat: Any, lon: Any, errors: list[FieldError]) -> tuple[float | None, float | None]:
    if type(lat) is float and type(lon) is float and abs(lat) <= 90.0 and abs(lon) <= 180.0:
        return round(lat, 6), round(lon, 6)  # what a JSON body usually holds (NaN and infinities fail here)
    if lat in (None, "") and lon in (None, ""):
        return None, None
    out: list[float | None] = []
    for name, value, limit in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        try:
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
            if not math.isfinite(number) or abs(number) > limit:
                raise ValueError
            out.append(round(number, 6))
        except (TypeError, ValueError):
            if value in (None, ""):
                errors.append(FieldError(name, "required", N_("Give both latitude and longitude.")))
            else:
                message = N_("Latitude must be a number from -90 to 90.")
                if name == "lon":
                    message = N_("Longitude must be a number from -180 to 180.")
                errors.append(FieldError(name, "range", message))
            out.append(None)
    if out[0] is None or out[1] is None:
        return None, None
    return out[0], out[1]


def _sender_key(sender: str) -> str:
    """Who a sender is counted as: the phone in E.164 however it was written, else (a chat id) as given."""
    try:
        return normalize_phone(sender) if sender else ""
    except PhoneError:
        return sender.strip()


def _phone(value: Any, errors: list[FieldError]) -> str | None:
    raw = _text(value, "contact.phone", errors)
    if not raw:
        return None
    try:
        return normalize_phone(raw)
    except PhoneError:
        errors.append(
            FieldError("contact.phone", "format", N_("Give the phone number with its country code, like +86 138 ..."))
        )
        return None


def _reply(data: ReportInput, phone: str | None, errors: list[FieldError]) -> tuple[str, str]:
    """Where status updates go: the channel it came by, unless the reporter chose otherwise."""
    choice = None if data.reply_channel in (None, "") else data.reply_channel  # {} is a wrong value, not none
    if choice is None:
        if data.channel in ("sms", "telegram"):
            choice = data.channel
        else:
            choice = "sms" if phone else "web"
    if choice not in REPLY_CHANNELS:
        errors.append(FieldError("reply_channel", "unknown", N_("Choose SMS or the tracking page.")))
        return "web", ""
    if choice == "web":
        return "web", ""
    if choice == data.channel and data.address_for_replies:
        return choice, data.address_for_replies
    if choice == "sms" and phone:
        return "sms", phone
    if choice == "sms":
        errors.append(FieldError("contact.phone", "required", N_("Give a phone number to get replies by SMS.")))
    else:
        errors.append(
            FieldError("reply_channel", "unavailable", N_("Replies by Telegram need a report sent from Telegram."))
        )
    return "web", ""


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "on", "yes"))
