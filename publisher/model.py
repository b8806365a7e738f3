"""The warning model: one CAP 1.2 message (Alert, Update or Cancel) and its workflow record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from foundation.i18n import N_

# Workflow states of one message.
DRAFT, SUBMITTED, REJECTED, SCHEDULED, PUBLISHED, WITHDRAWN = (
    "draft",
    "submitted",
    "rejected",
    "scheduled",
    "published",
    "withdrawn",
)
EDITABLE = (DRAFT, REJECTED)
PENDING = (DRAFT, SUBMITTED, REJECTED, SCHEDULED)

# Lifecycle of a thread (a warning and its updates) once something in it is published.
ACTIVE, CANCELLED, EXPIRED = "active", "cancelled", "expired"


@dataclass
class InfoText:
    headline: str
    description: str
    instruction: str = ""


@dataclass
class Circle:
    lat: float
    lon: float
    radius_km: float


@dataclass
class Content:
    """What the drafter composes; everything CAP needs besides the envelope."""

    grade: str
    event: str
    category: str
    areas: list[str]
    expires: datetime
    info: dict[str, InfoText]  # BCP 47 tag -> texts
    status: str = "Actual"
    urgency: str = "Expected"
    certainty: str = "Likely"
    response_type: str = "Prepare"
    effective: datetime | None = None  # None: at publication
    onset: datetime | None = None
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)
    circles: list[Circle] = field(default_factory=list)

    @property
    def is_drill(self) -> bool:
        return self.status != "Actual"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("expires", "effective", "onset"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        data["polygons"] = [[list(p) for p in poly] for poly in self.polygons]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Content:
        data = dict(data)
        for key in ("expires", "effective", "onset"):
            data[key] = datetime.fromisoformat(data[key]) if data.get(key) else None
        data["info"] = {tag: InfoText(**texts) for tag, texts in data["info"].items()}
        data["circles"] = [Circle(**c) for c in data.get("circles", [])]
        data["polygons"] = [[(p[0], p[1]) for p in poly] for poly in data.get("polygons", [])]
        return cls(**data)


@dataclass
class Approval:
    user: str
    roles: list[str]
    at: str
    comment: str = ""
    unit: str = ""  # the approver's unit ("": the release centre, before units existed)


@dataclass
class Message:
    id: str  # GB/T 35965.1 identifier, also the CAP identifier
    thread: str  # id of the first message of this warning
    msg_type: str  # Alert | Update | Cancel
    state: str
    content: Content
    drafter: str
    created: str
    updated: str
    sent: str | None = None
    references: list[str] = field(default_factory=list)  # ids of earlier published messages
    approvals: list[Approval] = field(default_factory=list)
    rejection: dict[str, str] | None = None
    fast_path: dict[str, str] | None = None  # by, reason, at
    review: dict[str, str] | None = None  # by, comment, at (after a fast path)
    note: str = ""  # e.g. the reason of a cancellation
    rev: int = 0
    unit: str = ""  # the issuing unit's id ("": the release centre, before units existed)
    proposed_by: str = ""  # a sub-centre that proposed it for an area above its jurisdiction
    issuer: dict[str, object] = field(default_factory=dict)  # sender, names: as published, kept
    # What drafted it when no person did: a threshold plan's breach (plan, incident, sensor, reading).
    source: dict[str, str] = field(default_factory=dict)

    @property
    def needs_review(self) -> bool:
        return self.fast_path is not None and self.review is None

    def sender_or(self, default: str) -> str:
        """The CAP sender of the unit that issued it (`default`: the configured one, older messages)."""
        return str(self.issuer.get("sender") or default)

    def issuer_name(self, tag: str, default: str) -> str:
        """The issuing unit's name in a language (BCP 47 tag), as CAP, pages, feeds and messages show it."""
        names = self.issuer.get("names")
        if isinstance(names, dict) and names:
            return str(names.get(tag) or names.get("en") or next(iter(names.values())))
        return default

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["content"] = self.content.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        data = dict(data)
        data["content"] = Content.from_json(data["content"])
        data["approvals"] = [Approval(**a) for a in data.get("approvals", [])]
        return cls(**data)


@dataclass
class Thread:
    """A warning over time: its published messages in order and where it stands."""

    id: str
    published: list[str] = field(default_factory=list)
    status: str = ""  # "" until first published, then active/cancelled/expired
    grade: str = ""
    expires: str = ""

    @property
    def current(self) -> str | None:
        return self.published[-1] if self.published else None


# What a message tells its recipients (the `kind` channels render): a new warning, a change, the
# all-clear. The end of validity ("expired") is no message of its own; the planner sends it as a kind.
MESSAGE_KINDS = {"Alert": "alert", "Update": "update", "Cancel": "cancel"}


def message_kind(msg_type: str) -> str:
    """The kind of a message type: "Alert" -> "alert"; KeyError for anything else."""
    return MESSAGE_KINDS[msg_type]


# Names shown to people, marked for translation.
MSG_TYPE_NAMES = {"Alert": N_("Alert"), "Update": N_("Update"), "Cancel": N_("Cancel")}
STATE_NAMES = {
    DRAFT: N_("draft"),
    SUBMITTED: N_("submitted"),
    REJECTED: N_("rejected"),
    SCHEDULED: N_("scheduled"),
    PUBLISHED: N_("published"),
    WITHDRAWN: N_("withdrawn"),
}
THREAD_STATUS_NAMES = {ACTIVE: N_("active"), CANCELLED: N_("cancelled"), EXPIRED: N_("expired")}
