"""The citizen report: categories (Open311 service codes), statuses, and the typed records.

Every intake path (web form, JSON/multipart API, Open311, SMS, Telegram) builds a `ReportInput`
and hands it to `intake.submit_report`; nothing else creates reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from foundation.i18n import N_


@dataclass(frozen=True)
class Category:
    code: str  # the Open311 service_code
    name: str  # msgid
    group: str  # msgid
    event: str | None  # warning event type a "draft a warning" link starts from
    life_safety: bool = False
    base_priority: int = 3  # 1 (highest) .. 4
    emergency_number: str = ""  # what to call first, for life-safety categories
    keywords: tuple[str, ...] = ()  # words that name it in free text (SMS), lower case


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in (
        Category(
            "fire", N_("Fire or smoke"), N_("Danger to life"), "fire", True, 1, "119", ("fire", "smoke", "火", "烟")
        ),
        Category("gas_leak", N_("Gas leak"), N_("Danger to life"), "gas_leak", True, 1, "119", ("gas", "燃气", "煤气")),
        Category(
            "collapse",
            N_("Collapse of a building, wall or road"),
            N_("Danger to life"),
            "collapse",
            True,
            1,
            "110",
            ("collapse", "collapsed", "倒塌", "坍塌", "塌陷"),
        ),
        Category(
            "flood_people",
            N_("Flooding with people at risk"),
            N_("Danger to life"),
            "flood",
            True,
            1,
            "110",
            ("trapped", "被困"),
        ),
        Category(
            "waterlogging",
            N_("Waterlogged street or underpass"),
            N_("Water"),
            "waterlogging",
            False,
            2,
            "",
            ("flood", "flooded", "water", "积水", "内涝", "淹"),
        ),
        Category(
            "landslide",
            N_("Landslide or falling rocks"),
            N_("Ground"),
            "landslide",
            False,
            2,
            "",
            ("landslide", "滑坡"),
        ),
        Category(
            "power_line",
            N_("Fallen power line"),
            N_("Infrastructure"),
            "power_outage",
            False,
            2,
            "",
            ("power line", "wire", "电线"),
        ),
        Category(
            "chemical_smell",
            N_("Chemical smell or spill"),
            N_("Environment"),
            "hazmat",
            False,
            2,
            "",
            ("chemical", "spill", "化学", "泄漏", "异味"),
        ),
        Category(
            "fallen_tree",
            N_("Fallen tree or object blocking the way"),
            N_("Infrastructure"),
            "traffic",
            False,
            3,
            "",
            ("tree", "树"),
        ),
        Category(
            "road_damage",
            N_("Damaged road, bridge or manhole"),
            N_("Infrastructure"),
            "traffic",
            False,
            3,
            "",
            ("road", "manhole", "pothole", "井盖", "路面", "道路"),
        ),
        Category("other", N_("Other hazard"), N_("Other"), None, False, 3, "", ()),
    )
}

# Free-text words that make any report a danger to life, whatever its category.
LIFE_SAFETY_WORDS = ("trapped", "injured", "unconscious", "explosion", "被困", "受伤", "昏迷", "爆炸")

# The reporter-facing lifecycle (closed loop). Terminal statuses end the loop.
RECEIVED, VERIFIED, ASSIGNED, IN_PROGRESS, RESOLVED, REJECTED, DUPLICATE = (
    "received",
    "verified",
    "assigned",
    "in_progress",
    "resolved",
    "rejected",
    "duplicate",
)
STATUSES = (RECEIVED, VERIFIED, ASSIGNED, IN_PROGRESS, RESOLVED, REJECTED, DUPLICATE)
TERMINAL = frozenset({RESOLVED, REJECTED})
STATUS_NAMES = {
    RECEIVED: N_("Received"),
    VERIFIED: N_("Verified"),
    ASSIGNED: N_("Assigned to a department"),
    IN_PROGRESS: N_("Being handled"),
    RESOLVED: N_("Resolved"),
    REJECTED: N_("Rejected"),
    DUPLICATE: N_("Merged with an earlier report"),
}
# status -> statuses an incident may move to
TRANSITIONS: dict[str, frozenset[str]] = {
    RECEIVED: frozenset({VERIFIED, ASSIGNED, IN_PROGRESS, RESOLVED, REJECTED}),
    VERIFIED: frozenset({ASSIGNED, IN_PROGRESS, RESOLVED, REJECTED}),
    ASSIGNED: frozenset({ASSIGNED, IN_PROGRESS, RESOLVED, REJECTED}),
    IN_PROGRESS: frozenset({ASSIGNED, RESOLVED}),
    RESOLVED: frozenset(),
    REJECTED: frozenset(),
}

CHANNELS = ("web", "api", "open311", "sms", "telegram")
REPLY_CHANNELS = ("web", "sms", "telegram")

# Unambiguous when read aloud or typed from an SMS: no I, L, O, U (Crockford's base 32).
_TRACKING_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TRACKING_LENGTH = 16  # 80 random bits: unguessable, yet short enough for an SMS


# Each random byte becomes one digit: 256 byte values map onto the 32 digits 8 times each, so every
# digit is uniform and independent, and a code carries 16 x 5 = 80 random bits.
_BYTE_TO_DIGIT = bytes(_TRACKING_ALPHABET.encode()[b % 32] for b in range(256))
_random = bytearray()  # os.urandom read 64 codes at a time: one system call per code cost as much as the rest


def _forget_random() -> None:  # a forked child must not hand out its parent's codes
    _random.clear()


os.register_at_fork(after_in_child=_forget_random)


def new_tracking_code() -> str:
    if not _random:
        _random.extend(os.urandom(TRACKING_LENGTH * 64))
    code = _random[-TRACKING_LENGTH:].translate(_BYTE_TO_DIGIT).decode()
    del _random[-TRACKING_LENGTH:]
    return code


def normalise_tracking_code(value: str) -> str | None:
    code = value.strip().upper().replace("-", "").replace(" ", "")
    code = code.replace("O", "0").replace("I", "1").replace("L", "1")
    if len(code) != TRACKING_LENGTH or any(c not in _TRACKING_ALPHABET for c in code):
        return None
    return code


@dataclass
class Photo:
    data: bytes  # raw upload; never stored or served as is
    filename: str = ""


@dataclass
class ReportInput:
    """One submission, as any channel received it, before validation."""

    category: Any = None
    description: Any = ""
    lat: Any = None
    lon: Any = None
    area: Any = None  # an area code from /api/v1/areas
    address: Any = ""
    photos: list[Photo] = field(default_factory=list)
    photo_location: Any = False  # the reporter allows the photo's GPS tag as the location
    phone: Any = None  # E.164
    email: Any = None
    reply_channel: Any = None  # web | sms | telegram; None: the channel the report came by
    consent: Any = False
    people_at_risk: Any = False  # someone is in danger now: the priority lane whatever the category
    channel: str = "web"  # how it arrived: web | api | open311 | sms | telegram
    address_for_replies: str = ""  # the phone or chat id the channel itself knows (SMS, Telegram)
    locale: str = "zh_Hans"
    client: str = ""  # IP address, for rate limits only; never stored
    honeypot: str = ""


@dataclass
class Report:
    id: str  # public id (Open311 service_request_id)
    tracking_code: str  # secret: whoever holds it sees the status
    category: str
    description: str
    lat: float | None
    lon: float | None
    area: str | None
    address: str
    location_source: str  # device | photo | area | address
    photos: list[str]
    channel: str
    reply_channel: str  # web | sms | telegram
    reply_address: str  # E.164 phone or chat id; personal data
    contact: dict[str, str]  # personal data
    locale: str
    life_safety: bool
    created: str  # ISO 8601
    updated: str
    status: str = RECEIVED
    status_note: str = ""
    incident: str | None = None
    department: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        # Shallow copies of the containers: dataclasses.asdict deep-copies and costs more than
        # the rest of intake put together.
        return {
            **self.__dict__,
            "photos": list(self.photos),
            "contact": dict(self.contact),
            "history": [dict(step) for step in self.history],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Report:
        return cls(**record)

    def staff_json(self) -> dict[str, Any]:
        """What staff see of a report (the console's triage board, the staff APIs): its text, place,
        photos (ids) and the reporter's contact; not the tracking code, the reporter's own secret."""
        return {
            "id": self.id,
            "category": self.category,
            "status": self.status,
            "status_note": self.status_note,
            "description": self.description,
            "lat": self.lat,
            "lon": self.lon,
            "area": self.area,
            "address": self.address,
            "location_source": self.location_source,
            "photos": list(self.photos),
            "channel": self.channel,
            "reply_channel": self.reply_channel,
            "contact": dict(self.contact),
            "locale": self.locale,
            "life_safety": self.life_safety,
            "created": self.created,
            "updated": self.updated,
            "incident": self.incident,
            "department": self.department,
            "history": [dict(step) for step in self.history],
        }

    def public_json(self) -> dict[str, Any]:
        """What the tracking page and API show: status, never personal data or the free text."""
        return {
            "tracking_code": self.tracking_code,
            "id": self.id,
            "category": self.category,
            "status": self.status,
            "status_note": self.status_note,
            "area": self.area,
            "created": self.created,
            "updated": self.updated,
            "history": [{"status": h["status"], "at": h["at"], "note": h.get("note", "")} for h in self.history],
        }


@dataclass(frozen=True)
class ReportConfig:
    """Limits and tunables of citizen reporting (defaults suit one city; tests and benchmarks adjust)."""

    max_photos: int = 3
    max_photo_bytes: int = 8 * 1024 * 1024
    max_photo_pixels: int = 40_000_000  # decompression-bomb guard
    photo_edge: int = 2048  # re-encoded photos fit in this square
    min_description: int = 5
    max_description: int = 2000
    max_address: int = 200
    corroboration_metres: float = 250.0
    corroboration_hours: float = 6.0
    per_ip: tuple[int, int] = (20, 600)  # reports per window (seconds)
    per_sender: tuple[int, int] = (6, 3600)  # per phone or chat
    idempotency_hours: int = 24
    # priority (1 highest) -> minutes until the item must have been acted on
    deadline_minutes: tuple[tuple[int, int], ...] = ((1, 30), (2, 120), (3, 24 * 60), (4, 72 * 60))

    def deadline_for(self, priority: int) -> int:
        return dict(self.deadline_minutes).get(priority, 72 * 60)


def report_item_fields(report: Report) -> list[str]:
    """The queue item of a new report, as the intake script's flat field list; the script puts the
    report's id (field `ref`) first, once it has allocated it."""
    lane = "priority" if report.life_safety else "normal"
    area = report.area or ""
    return ["kind", "report", "category", report.category, "lane", lane, "area", area, "at", report.created]
