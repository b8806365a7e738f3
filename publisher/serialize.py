"""JSON shapes of the API. Staff see the workflow record; the public never sees people's names."""

from __future__ import annotations

from typing import Any

from foundation.areas.registry import AreaRegistry
from foundation.settings import Settings
from publisher.model import Message
from publisher.taxonomy import GRADE_LEVEL, GRADE_SEVERITY


def message_json(message: Message, *, registry: AreaRegistry, settings: Settings, staff: bool) -> dict[str, Any]:
    content = message.content.to_json()
    areas = []
    for code in message.content.areas:
        area = registry.get(code)
        areas.append({"code": code, "name": area.name if area else {}})
    base = settings.public_url
    body: dict[str, Any] = {
        "id": message.id,
        "thread": message.thread,
        "msg_type": message.msg_type,
        "state": message.state,
        "sent": message.sent,
        "references": message.references,
        **{
            k: content[k]
            for k in (
                "grade",
                "event",
                "category",
                "status",
                "urgency",
                "certainty",
                "response_type",
                "effective",
                "onset",
                "expires",
                "polygons",
                "circles",
                "info",
            )
        },
        "severity": GRADE_SEVERITY[message.content.grade],
        "level": GRADE_LEVEL[message.content.grade],
        "drill": message.content.is_drill,
        "areas": areas,
        "issuer": {
            "unit": message.unit or "",
            "sender": message.sender_or(settings.sender),
            "name": {tag: message.issuer_name(tag, settings.sender_name) for tag in settings.languages},
        },
        "links": {
            "self": f"{base}/api/v1/warnings/{message.id}",
            "page": f"{base}/warnings/{message.id}",
            **({"cap": f"{base}/cap/{message.id}.xml"} if message.sent else {}),
        },
    }
    if message.msg_type == "Cancel" and message.note:
        body["reason"] = message.note
    if staff:
        body.update(
            drafter=message.drafter,
            created=message.created,
            updated=message.updated,
            approvals=[a.__dict__ for a in message.approvals],
            rejection=message.rejection,
            fast_path=message.fast_path,
            review=message.review,
            needs_review=message.needs_review,
            proposed_by=message.proposed_by,
            source=message.source or None,
        )
    return body
