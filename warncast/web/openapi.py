"""The OpenAPI 3.1 document for /api/v1, built from one table of operations."""

from __future__ import annotations

from typing import Any

from foundation.settings import Settings
from publisher.taxonomy import CAP_CATEGORIES, CERTAINTIES, EVENTS, GRADES, RESPONSE_TYPES, STATUSES, URGENCIES

_TEXTS = {
    "type": "object",
    "required": ["headline", "description"],
    "additionalProperties": False,
    "properties": {
        "headline": {"type": "string", "maxLength": 160},
        "description": {"type": "string", "maxLength": 3000},
        "instruction": {"type": "string", "maxLength": 1000},
    },
}
_POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "[lat, lon]"}
WARNING_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["grade", "event", "expires", "info"],
    "properties": {
        "grade": {"enum": list(GRADES)},
        "event": {"enum": list(EVENTS)},
        "category": {"enum": list(CAP_CATEGORIES), "description": "must match the event's category"},
        "areas": {"type": "array", "items": {"type": "string"}, "description": "area codes from /api/v1/areas"},
        "polygons": {
            "type": "array",
            "items": {"type": "array", "items": _POINT, "minItems": 4},
            "description": "closed rings, first point = last point",
        },
        "circles": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["lat", "lon", "radius_km"],
                "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}, "radius_km": {"type": "number"}},
            },
        },
        "status": {"enum": list(STATUSES), "description": "Exercise and Test are drills"},
        "urgency": {"enum": list(URGENCIES)},
        "certainty": {"enum": list(CERTAINTIES)},
        "response_type": {"enum": list(RESPONSE_TYPES)},
        "effective": {"type": "string", "format": "date-time", "description": "default: at publication"},
        "onset": {"type": "string", "format": "date-time"},
        "expires": {"type": "string", "format": "date-time"},
        "info": {
            "type": "object",
            "required": ["zh-CN", "en"],
            "properties": {"zh-CN": _TEXTS, "en": _TEXTS},
            "additionalProperties": False,
        },
    },
}
ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string"},
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}
TOO_MANY: dict[str, Any] = {
    "description": "Too many requests from this address; try again after Retry-After seconds",
    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
SCREEN_ID = "^[a-z0-9][a-z0-9-]{0,39}$"
_TEXT_FIELD = lambda name: {"type": "object", "properties": {name: {"type": "string", "maxLength": 1000}}}  # noqa: E731

# (method, path, summary, role needed or None for public, request body schema or None)
OPERATIONS: list[tuple[str, str, str, str | None, dict[str, Any] | None]] = [
    ("get", "/api/v1/areas", "The area registry (?level=, ?parent=, ?point=lat,lon)", None, None),
    (
        "get",
        "/api/v1/areas.geojson",
        "The area registry as GeoJSON for maps; ?zoom=0..18 thins each ring to about a pixel at that zoom "
        "(zoom=raw: the registry's rings), ?level= keeps one level",
        None,
        None,
    ),
    ("get", "/api/v1/taxonomy", "Grades, CAP categories and event types", None, None),
    (
        "get",
        "/api/v1/warnings",
        "Messages (?active=true, ?state=, ?limit=, ?area=, ?point=lat,lon, ?grade=, ?event=, ?status=, "
        "?msg_type=); the public sees published ones; Accept: application/geo+json gives GeoJSON",
        None,
        None,
    ),
    ("post", "/api/v1/warnings", "Create a draft", "drafter, chief", {"$ref": "#/components/schemas/WarningBody"}),
    ("get", "/api/v1/warnings/{id}", "One message", None, None),
    (
        "patch",
        "/api/v1/warnings/{id}",
        "Edit a draft or a rejected message (partial body)",
        "drafter, chief",
        {"$ref": "#/components/schemas/WarningBody"},
    ),
    ("post", "/api/v1/warnings/{id}/submit", "Submit for approval", "drafter, chief", None),
    (
        "post",
        "/api/v1/warnings/{id}/approve",
        "Approve; the approval completing the quorum publishes or schedules",
        "approver, chief",
        _TEXT_FIELD("comment"),
    ),
    ("post", "/api/v1/warnings/{id}/reject", "Reject with a comment", "approver, chief", _TEXT_FIELD("comment")),
    (
        "post",
        "/api/v1/warnings/{id}/publish",
        "Emergency fast path: publish at once with a reason",
        "chief",
        _TEXT_FIELD("reason"),
    ),
    (
        "post",
        "/api/v1/warnings/{id}/review",
        "Review a fast-path publication afterwards",
        "chief",
        _TEXT_FIELD("comment"),
    ),
    (
        "post",
        "/api/v1/warnings/{id}/update",
        "Create an Update message (partial body); answers with the new message",
        "drafter, chief",
        {"$ref": "#/components/schemas/WarningBody"},
    ),
    (
        "post",
        "/api/v1/warnings/{id}/cancel",
        "Create a Cancel message; answers with the new message",
        "drafter, chief",
        _TEXT_FIELD("reason"),
    ),
    ("get", "/api/v1/approval-rules", "Approval quorum per grade", "any staff role", None),
    ("put", "/api/v1/approval-rules", "Replace the approval rules", "admin", {"type": "object"}),
    ("get", "/api/v1/audit", "The newest audit log entries (?unit=: those about one unit)", "chief, admin", None),
    (
        "get",
        "/api/v1/warnings/{id}/preview",
        "Every channel's exact text per language, SMS segments and reach",
        "any staff role",
        None,
    ),
    (
        "post",
        "/api/v1/warnings/preview",
        "The same preview for an unsaved body",
        "drafter, chief",
        {"$ref": "#/components/schemas/WarningBody"},
    ),
    ("get", "/api/v1/warnings/{id}/deliveries", "Delivery statistics per channel", "any staff role", None),
    ("get", "/api/v1/channel-policy", "Which grades go to which push channel", "any staff role", None),
    ("put", "/api/v1/channel-policy", "Replace the channel policy", "admin", {"type": "object"}),
    (
        "get",
        "/api/v1/outbox/{channel}",
        "Messages delivered into a channel's outbox (no credentials)",
        "drafter, approver, chief, admin",
        None,
    ),
    (
        "get",
        "/api/v1/dispatch/dead-letters",
        "Deliveries that failed every attempt",
        "drafter, approver, chief, admin",
        None,
    ),
    ("post", "/api/v1/dispatch/dead-letters/replay", "Put every dead letter back on the queue", "chief, admin", None),
    ("get", "/api/v1/openapi.json", "This document", None, None),
    # Display screens: the registry (outputs are /screens/{id}, .json, .txt and /events).
    (
        "get",
        "/api/v1/screens",
        "Screens with status (online/stale/offline) and what each shows",
        "any staff role",
        None,
    ),
    ("post", "/api/v1/screens", "Register a screen", "admin", {"$ref": "#/components/schemas/ScreenBody"}),
    ("get", "/api/v1/screens/{id}", "One screen with its status", "any staff role", None),
    ("put", "/api/v1/screens/{id}", "Replace a screen's record", "admin", {"$ref": "#/components/schemas/ScreenBody"}),
    ("delete", "/api/v1/screens/{id}", "Remove a screen", "admin", None),
    # Partner webhooks: systems that receive every message they match as a signed POST (see README).
    (
        "get",
        "/api/v1/partners",
        "Registered partner systems (secrets are never shown, only a hint)",
        "any staff role",
        None,
    ),
    (
        "post",
        "/api/v1/partners",
        "Register a partner; 201 with the signing secret, shown this once",
        "admin",
        {"$ref": "#/components/schemas/PartnerBody"},
    ),
    ("get", "/api/v1/partners/{id}", "One partner", "any staff role", None),
    (
        "put",
        "/api/v1/partners/{id}",
        "Replace a partner's settings (the secret is kept)",
        "admin",
        {"$ref": "#/components/schemas/PartnerBody"},
    ),
    ("delete", "/api/v1/partners/{id}", "Remove a partner", "admin", None),
    ("post", "/api/v1/partners/{id}/rotate-secret", "A new signing secret, shown this once", "admin", None),
    # Issuing units: who issues which event types where (classified management; see README).
    (
        "get",
        "/api/v1/units",
        "Issuing units (configured false: the one implicit release centre)",
        "any staff role",
        None,
    ),
    ("post", "/api/v1/units", "Add an issuing unit", "admin", {"$ref": "#/components/schemas/UnitBody"}),
    ("get", "/api/v1/units/{id}", "One issuing unit", "any staff role", None),
    ("put", "/api/v1/units/{id}", "Replace a unit's record", "admin", {"$ref": "#/components/schemas/UnitBody"}),
    ("delete", "/api/v1/units/{id}", "Remove a unit (none under it, no users in it)", "admin", None),
    (
        "get",
        "/api/v1/units/{id}/warnings",
        "What a unit issued, newest first (?under=true: and the units under it); the public sees published ones",
        None,
        None,
    ),
    (
        "get",
        "/api/v1/units/{id}/deliveries",
        "Delivery statistics of a unit's published messages, per message and per channel (?under=true)",
        "drafter, approver, chief, admin",
        None,
    ),
    ("put", "/api/v1/users/{name}/unit", "Move a user to a unit", "admin", {"type": "object"}),
    # Duty groups: a unit's WeCom, DingTalk and Feishu group robots (keys and secrets never shown back).
    ("get", "/api/v1/duty-groups", "Registered duty groups (?unit=)", "any staff role", None),
    (
        "post",
        "/api/v1/duty-groups",
        "Register a unit's group robot",
        "admin",
        {"$ref": "#/components/schemas/DutyGroupBody"},
    ),
    ("get", "/api/v1/duty-groups/{id}", "One duty group", "any staff role", None),
    (
        "put",
        "/api/v1/duty-groups/{id}",
        "Replace a duty group (token and secret kept unless given)",
        "admin",
        {"$ref": "#/components/schemas/DutyGroupBody"},
    ),
    ("delete", "/api/v1/duty-groups/{id}", "Remove a duty group", "admin", None),
    (
        "post",
        "/api/v1/reports",
        "File a citizen hazard report (JSON, or multipart with up to 3 photos); Idempotency-Key header makes "
        "retries safe; 201 with the tracking code (200 on a replay)",
        None,
        {"$ref": "#/components/schemas/ReportBody"},
    ),
    ("get", "/api/v1/reports/{tracking_code}", "A report's status by its tracking code (no personal data)", None, None),
    ("get", "/api/v1/monitoring/items", "Monitoring-queue items in order (?after=<id>&limit=)", "any staff role", None),
    (
        "post",
        "/api/v1/monitoring/readings",
        "Sensor readings {sensor, type, value, time[, area | lat, lon]} or {readings: [...]}; a colour change "
        "raises a queue item",
        "sensor, triage, admin",
        {"type": "object"},
    ),
    ("post", "/api/v1/monitoring/alerts", "An upstream CAP 1.2 alert as XML", "sensor, triage, admin", None),
    (
        "get",
        "/api/v1/incidents",
        "Triage-board incidents (?status=, ?priority=, ?department=, ...)",
        "any staff role",
        None,
    ),
    ("get", "/api/v1/incidents/{id}", "One incident", "any staff role", None),
    (
        "post",
        "/api/v1/incidents/{id}/{action}",
        "verify | assign (department) | progress | resolve | reject (reason) | merge (into)",
        "triage, chief",
        {
            "type": "object",
            "properties": {"reason": {"type": "string"}, "department": {"type": "string"}, "into": {"type": "string"}},
        },
    ),
    ("get", "/api/v1/routing", "The routing table: category x area -> department", "any staff role", None),
    ("put", "/api/v1/routing", "Replace the routing table", "admin", {"type": "object"}),
]
SCREEN_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "area"],
    "properties": {
        "id": {"type": "string", "pattern": SCREEN_ID, "description": "ignored by PUT"},
        "name": {"type": "string", "maxLength": 80},
        "location": {"type": "string", "maxLength": 160},
        "area": {"type": "string", "description": "area code; the screen shows warnings concerning it"},
        "languages": {"type": "array", "items": {"enum": ["zh-CN", "en"]}},
        "orientation": {"enum": ["landscape", "portrait"]},
        "text_size": {"enum": ["normal", "large", "huge"]},
        "line_width": {"type": "integer", "minimum": 8, "maximum": 200, "description": "LED text columns"},
        "encoding": {"enum": ["utf-8", "gb18030", "gb2312", "ascii"], "description": "LED text encoding"},
        "rotate_seconds": {"type": "integer", "minimum": 3, "maximum": 120},
    },
}
PARTNER_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name", "url"],
    "properties": {
        "id": {"type": "string", "pattern": SCREEN_ID, "description": "ignored by PUT"},
        "name": {"type": "string", "maxLength": 80},
        "url": {"type": "string", "format": "uri", "maxLength": 500, "description": "http(s), no credentials"},
        "format": {"enum": ["json", "cap"], "description": "our JSON with cap_url and kind, or the CAP XML"},
        "min_grade": {"enum": list(GRADES), "description": "default blue: every grade"},
        "areas": {"type": "array", "items": {"type": "string"}, "description": "area codes; empty: every area"},
        "active": {"type": "boolean"},
        "include_drills": {"type": "boolean"},
    },
}
UNIT_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "names", "kind", "sender", "code"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$", "description": "ignored by PUT"},
        "names": {
            "type": "object",
            "required": ["zh-CN", "en"],
            "properties": {"zh-CN": {"type": "string", "maxLength": 80}, "en": {"type": "string", "maxLength": 80}},
        },
        "kind": {"enum": ["centre", "department", "subcentre"]},
        "parent": {"type": "string", "description": "a unit id; empty for the one release centre at the top"},
        "areas": {"type": "array", "items": {"type": "string"}, "description": "jurisdiction; empty: the city"},
        "events": {"type": "array", "items": {"enum": list(EVENTS)}, "description": "empty: every event type"},
        "sender": {"type": "string", "maxLength": 120, "description": "CAP sender"},
        "code": {"type": "string", "pattern": "^\\d{6}$", "description": "GB/T 35965.1 sector + unit code"},
        "contacts": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "phone": {"type": "string"}}},
        },
    },
}
DUTY_GROUP_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "unit", "tool", "name"],
    "properties": {
        "id": {"type": "string", "pattern": SCREEN_ID, "description": "ignored by PUT"},
        "unit": {"type": "string", "description": "a unit id from /api/v1/units"},
        "tool": {"enum": ["wecom", "dingtalk", "feishu"]},
        "name": {"type": "string", "maxLength": 80},
        "token": {"type": "string", "description": "the robot's key / access token / hook id; empty: outbox"},
        "secret": {"type": "string", "description": "signing secret (DingTalk SEC..., Feishu)"},
        "min_grade": {"enum": list(GRADES)},
        "receives": {"type": "array", "items": {"enum": ["warnings", "approvals", "incidents"]}},
        "lang": {"enum": ["zh-CN", "en"]},
        "active": {"type": "boolean"},
        "include_drills": {"type": "boolean"},
    },
}
REPORT_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["category", "description"],
    "properties": {
        "category": {"type": "string", "description": "a service_code from /open311/v2/services.json"},
        "description": {"type": "string", "minLength": 5, "maxLength": 2000},
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "area": {"type": "string", "description": "an area code from /api/v1/areas"},
        "address": {"type": "string", "maxLength": 200},
        "contact": {"type": "object", "properties": {"phone": {"type": "string"}, "email": {"type": "string"}}},
        "reply_channel": {"enum": ["web", "sms"]},
        "people_at_risk": {"type": "boolean"},
        "photo_location": {"type": "boolean", "description": "use the photo's GPS tag when no location is given"},
    },
    "description": "one of lat+lon, area or address is required",
}


def openapi_document(settings: Settings) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, roles, body in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {"description": "OK"},
                "4XX": {
                    "description": "Error naming the field and reason, in the request's language",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
        if "{channel}" in path:
            operation["parameters"] = [
                {
                    "name": "channel",
                    "in": "path",
                    "required": True,
                    "schema": {"enum": ["sms", "telegram", "wecom", "dingtalk", "feishu"]},
                }
            ]
        if "{id}" in path and path.startswith("/api/v1/warnings"):
            operation["parameters"] = [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {
                        "type": "string",
                        "pattern": SCREEN_ID if "/screens/" in path else r"^\d{14}_\d{14}_\d$",
                    },
                }
            ]
        if roles:
            operation["security"] = [{"bearer": []}, {"session": []}]
            operation["description"] = f"Roles: {roles}."
        else:  # public: limited per client address (reads in each process, reports in Redis)
            operation["responses"]["429"] = TOO_MANY
        if body:
            operation["requestBody"] = {
                "required": method != "post" or "$ref" in body,
                "content": {"application/json": {"schema": body}},
            }
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "warncast",
            "version": "1",
            "description": "Graded early warnings (CAP 1.2) from draft to publication.",
        },
        "servers": [{"url": settings.public_url}],
        "paths": paths,
        "components": {
            "schemas": {
                "WarningBody": WARNING_BODY,
                "ScreenBody": SCREEN_BODY,
                "PartnerBody": PARTNER_BODY,
                "UnitBody": UNIT_BODY,
                "DutyGroupBody": DUTY_GROUP_BODY,
                "ReportBody": REPORT_BODY,
                "Error": ERROR,
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "warncast admin create-token"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "wc_session",
                    "description": "console session; writes need the X-CSRF-Token header",
                },
            },
        },
    }
