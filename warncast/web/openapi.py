"""The OpenAPI 3.1 document for /api/v1, built from one table of operations.

It is a contract: every path parameter is declared, every answer has its status and schema, bodies
their media types and required fields (openapi_schemas.py). The tests validate the document with
openapi-spec-validator and run schemathesis against a real server with every role's token
(tests/warncast/test_openapi_contract.py); `make fuzz` runs it longer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from foundation.settings import Settings
from publisher.taxonomy import EVENTS, GRADES, STATUSES
from warncast.web.openapi_schemas import (  # noqa: I001
    APPROVAL_RULES_ANSWER,
    CHANNEL_POLICY_ANSWER,
    COMMENT,
    COMPONENTS,
    DELETED,
    GEOJSON,
    PUSH_CHANNELS,
    REASON,
    REPORT_FORM,
    REQUIRED_COMMENT,
    REQUIRED_REASON,
    SCREEN_ID,
    WARNING_ID,
    obj,
    ref,
)

ANY_STAFF = "drafter, approver, chief, triage, admin"
POINT = "^(-?[0-9]+(\\.[0-9]+)?,-?[0-9]+(\\.[0-9]+)?)?$"
DELIVERY_READERS = "drafter, approver, chief, admin"
ARRAY = {"type": "array", "items": {"type": "object"}}
RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}
ERROR_CONTENT = {"application/json": {"schema": ref("Error")}}
# Path parameters by name; a warning id and a screen or partner id have their own shapes.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "warning": {"type": "string", "pattern": WARNING_ID, "description": "a message id (GB/T 35965.1)"},
    "slug": {"type": "string", "pattern": SCREEN_ID},
    "incident": {
        "type": "string",
        "pattern": "^[A-Z][0-9A-Za-z-]{0,63}$",
        "description": "R… reports, B… breach, A… alert",
    },
    "action": {"enum": ["verify", "assign", "progress", "resolve", "reject", "merge"]},
    "tracking_code": {"type": "string", "pattern": "^[0-9A-Za-z]{1,32}$", "description": "case does not matter"},
    "channel": {"enum": [*PUSH_CHANNELS, "wecom", "dingtalk", "feishu"]},  # the outboxes (duty groups too)
    "unit": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"},
    "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{1,31}$", "description": "a console user"},
}


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    roles: str | None = None  # who may call it; None: the public (limited per client address)
    answer: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    status: int = 200
    body: dict[str, Any] | None = None  # the JSON body's schema
    body_required: bool = True
    other_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # media type -> schema
    query: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> schema
    also: tuple[int, ...] = ()  # other success statuses with the same answer


def text_query(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


LIMIT = {"type": "integer", "description": "how many (clamped to the allowed range)"}


def choices(*values: str, lists: bool = False) -> dict[str, Any]:
    """A query value from `values` (or empty); with `lists` a comma-separated list of them."""
    one = "|".join(values)
    pattern = f"^(({one})(,({one}))*)?$" if lists else f"^({one})?$"
    return {"type": "string", "pattern": pattern}


WARNING_QUERY = {
    "active": {**choices("true", "false", "1", "0"), "description": "true: only those in force now"},
    "state": text_query("staff: draft, submitted, scheduled, published, rejected, ..."),
    "limit": LIMIT,
    "area": text_query("an area code"),
    "point": {"type": "string", "pattern": POINT, "description": "lat,lon: warnings covering the point"},
    "grade": choices(*GRADES, lists=True),
    "event": choices(*EVENTS),
    "status": choices(*STATUSES),
    "msg_type": choices("Alert", "Update", "Cancel"),
}
OPERATIONS: list[Op] = [
    Op(
        "get",
        "/api/v1/areas",
        "The area registry",
        answer=obj({"areas": ARRAY}, ("areas",)),
        query={
            "level": text_query("city, district, street, community"),
            "parent": text_query("a parent's code"),
            "point": {"type": "string", "pattern": POINT, "description": "lat,lon: the areas containing it"},
        },
    ),
    Op(
        "get",
        "/api/v1/taxonomy",
        "Grades, CAP categories and event types",
        answer=obj(
            {"grades": ARRAY, "categories": {"type": "array"}, "events": ARRAY}, ("grades", "categories", "events")
        ),
    ),
    Op(
        "get",
        "/api/v1/warnings",
        "Messages; the public sees published ones; Accept: application/geo+json gives GeoJSON",
        answer=ref("Messages"),
        query=WARNING_QUERY,
    ),
    Op(
        "post",
        "/api/v1/warnings",
        "Create a draft; 201 with Location",
        "drafter, chief",
        ref("Message"),
        201,
        ref("WarningBody"),
    ),
    Op("get", "/api/v1/warnings/{id}", "One message (the public: published ones)", answer=ref("Message")),
    Op(
        "patch",
        "/api/v1/warnings/{id}",
        "Edit a draft or a rejected message (only the fields that change)",
        "drafter, chief",
        ref("Message"),
        body=ref("WarningPatch"),
    ),
    Op("post", "/api/v1/warnings/{id}/submit", "Submit for approval", "drafter, chief", ref("Message")),
    Op(
        "post",
        "/api/v1/warnings/{id}/approve",
        "Approve; the approval completing the quorum publishes or schedules",
        "approver, chief",
        ref("Message"),
        body=COMMENT,
        body_required=False,
    ),
    Op(
        "post",
        "/api/v1/warnings/{id}/reject",
        "Reject with a comment",
        "approver, chief",
        ref("Message"),
        body=REQUIRED_COMMENT,
    ),
    Op(
        "post",
        "/api/v1/warnings/{id}/publish",
        "Emergency fast path: publish at once with a reason",
        "chief",
        ref("Message"),
        body=REQUIRED_REASON,
    ),
    Op(
        "post",
        "/api/v1/warnings/{id}/review",
        "Review a fast-path publication afterwards (another chief)",
        "chief",
        ref("Message"),
        body=REQUIRED_COMMENT,
    ),
    Op(
        "post",
        "/api/v1/warnings/{id}/update",
        "Create an Update message (only the fields that change); 201",
        "drafter, chief",
        ref("Message"),
        201,
        ref("WarningPatch"),
    ),
    Op(
        "post",
        "/api/v1/warnings/{id}/cancel",
        "Create a Cancel message, with an optional reason; 201",
        "drafter, chief",
        ref("Message"),
        201,
        REASON,
        body_required=False,
    ),
    Op(
        "get",
        "/api/v1/approval-rules",
        "Approval quorum per grade and for cancellations",
        ANY_STAFF,
        APPROVAL_RULES_ANSWER,
    ),
    Op(
        "put",
        "/api/v1/approval-rules",
        "Replace the approval rules (grades left out keep their default)",
        "admin",
        APPROVAL_RULES_ANSWER,
        body=ref("ApprovalRules"),
    ),
    Op(
        "get",
        "/api/v1/audit",
        "The newest audit log entries",
        "chief, admin",
        obj({"total": {"type": "integer"}, "entries": ARRAY}, ("total", "entries")),
    ),
    Op(
        "get",
        "/api/v1/warnings/{id}/preview",
        "Every channel's exact text per language, SMS segments and reach",
        ANY_STAFF,
        obj({"id": {"type": "string"}, "channels": {"type": "object"}}, ("channels",)),
    ),
    Op(
        "post",
        "/api/v1/warnings/preview",
        "The same preview for an unsaved body",
        "drafter, chief",
        obj({"channels": {"type": "object"}}, ("channels",)),
        body=ref("WarningBody"),
    ),
    Op(
        "get",
        "/api/v1/warnings/{id}/deliveries",
        "Delivery statistics per channel",
        DELIVERY_READERS,
        obj({"planned": {"type": "boolean"}, "channels": {"type": "object"}}, ("planned", "channels")),
    ),
    Op("get", "/api/v1/channel-policy", "Which grades go to which push channel", ANY_STAFF, CHANNEL_POLICY_ANSWER),
    Op(
        "put",
        "/api/v1/channel-policy",
        "Replace the channel policy (grades left out keep their default)",
        "admin",
        CHANNEL_POLICY_ANSWER,
        body=ref("ChannelPolicy"),
    ),
    Op(
        "get",
        "/api/v1/outbox/{channel}",
        "Messages delivered into a channel's outbox (no credentials)",
        DELIVERY_READERS,
        obj(
            {"channel": {"enum": [*PUSH_CHANNELS, "wecom", "dingtalk", "feishu"]}, "entries": ARRAY},
            ("channel", "entries"),
        ),
    ),
    Op(
        "get",
        "/api/v1/dispatch/dead-letters",
        "Deliveries that failed every attempt",
        DELIVERY_READERS,
        obj({"total": {"type": "integer"}, "entries": ARRAY}, ("total", "entries")),
    ),
    Op(
        "post",
        "/api/v1/dispatch/dead-letters/replay",
        "Put every dead letter back on the queue",
        "chief, admin",
        obj({"replayed": {"type": "integer"}}, ("replayed",)),
    ),
    Op(
        "get",
        "/api/v1/openapi.json",
        "This document",
        answer=obj({"openapi": {"type": "string"}}, ("openapi", "paths")),
    ),
    # Display screens: the registry (outputs are /screens/{id}, .json, .txt and /events).
    Op(
        "get",
        "/api/v1/screens",
        "Screens with status (online/stale/offline) and what each shows",
        ANY_STAFF,
        obj({"screens": {"type": "array", "items": ref("Screen")}}, ("screens",)),
    ),
    Op(
        "post",
        "/api/v1/screens",
        "Register a screen; 201 with Location",
        "admin",
        ref("Screen"),
        201,
        ref("ScreenBody"),
    ),
    Op("get", "/api/v1/screens/{id}", "One screen with its status", ANY_STAFF, ref("Screen")),
    Op("put", "/api/v1/screens/{id}", "Replace a screen's record", "admin", ref("Screen"), body=ref("ScreenReplace")),
    Op("delete", "/api/v1/screens/{id}", "Remove a screen", "admin", DELETED),
    # Partner webhooks: systems that receive every message they match as a signed POST (see README).
    Op(
        "get",
        "/api/v1/partners",
        "Registered partner systems (secrets are never shown, only a hint)",
        ANY_STAFF,
        obj({"partners": {"type": "array", "items": ref("Partner")}}, ("partners",)),
    ),
    Op(
        "post",
        "/api/v1/partners",
        "Register a partner; 201 with the signing secret, shown this once",
        "admin",
        obj({"secret": {"type": "string"}}, ("id", "secret")),
        201,
        ref("PartnerBody"),
    ),
    Op("get", "/api/v1/partners/{id}", "One partner", ANY_STAFF, ref("Partner")),
    Op(
        "put",
        "/api/v1/partners/{id}",
        "Replace a partner's settings (the secret is kept)",
        "admin",
        ref("Partner"),
        body=ref("PartnerReplace"),
    ),
    Op("delete", "/api/v1/partners/{id}", "Remove a partner", "admin", DELETED),
    Op(
        "post",
        "/api/v1/partners/{id}/rotate-secret",
        "A new signing secret, shown this once",
        "admin",
        obj({"secret": {"type": "string"}}, ("id", "secret")),
    ),
    Op(
        "post",
        "/api/v1/reports",
        "File a citizen hazard report (JSON, or multipart with up to 3 photos); an Idempotency-Key header makes "
        "retries safe; 201 with the tracking code and Location (200 on a replay)",
        answer=ref("Report"),
        status=201,
        body=ref("ReportBody"),
        other_bodies={"multipart/form-data": REPORT_FORM},
        also=(200,),
    ),
    Op(
        "get",
        "/api/v1/reports/{tracking_code}",
        "A report's status by its tracking code (no personal data)",
        answer=ref("Report"),
    ),
    Op(
        "get",
        "/api/v1/monitoring/items",
        "Monitoring-queue items in order, a report's with what staff see of it",
        ANY_STAFF,
        obj({"items": ARRAY, "last": {"type": "string"}}, ("items", "last")),
        query={
            "after": {"type": "string", "pattern": "^(-|[0-9]+(-[0-9]+)?)$", "description": "the last id seen"},
            "limit": LIMIT,
        },
    ),
    Op(
        "post",
        "/api/v1/monitoring/readings",
        "Sensor readings; a colour change raises a queue item; 202",
        "sensor, triage, admin",
        obj({"readings": ARRAY}, ("readings",)),
        202,
        ref("Readings"),
    ),
    Op(
        "post",
        "/api/v1/monitoring/alerts",
        "An upstream CAP 1.2 alert as XML (at most 512 KB, no DTD); 202",
        "sensor, triage, admin",
        {"type": "object"},
        202,
        other_bodies={
            media: {"type": "string", "description": "a CAP 1.2 <alert>"}
            for media in ("application/cap+xml", "application/xml")
        },
    ),
    Op(
        "get",
        "/api/v1/incidents",
        "Triage-board incidents with their reports as staff see them",
        ANY_STAFF,
        obj({"incidents": {"type": "array", "items": ref("Incident")}}, ("incidents",)),
        query={
            name: text_query("as on the triage board")
            for name in ("status", "priority", "department", "category", "kind", "area")
        }
        | {"limit": LIMIT},
    ),
    Op("get", "/api/v1/incidents/{id}", "One incident with its reports as staff see them", ANY_STAFF, ref("Incident")),
    Op(
        "post",
        "/api/v1/incidents/{id}/{action}",
        "verify | assign (department) | progress | resolve | reject (reason) | merge (into)",
        "triage, chief",
        ref("Incident"),
        body=obj(
            {
                "reason": {"type": "string", "maxLength": 1000},
                "department": {"type": "string"},
                "into": {"type": "string"},
            },
            closed=True,
        ),
        body_required=False,
    ),
    Op("get", "/api/v1/routing", "The routing table: category x area -> department", ANY_STAFF, ref("Routing")),
    Op("put", "/api/v1/routing", "Replace the routing table", "admin", ref("Routing"), body=ref("Routing")),
    # Threshold plans and the warning templates they draft from (README "Threshold plans").
    Op("get", "/api/v1/warning-templates", "The warning templates", ANY_STAFF, ref("WarningTemplates")),
    Op(
        "put",
        "/api/v1/warning-templates",
        "Replace the warning templates (409 while a plan drafts from one left out)",
        "admin",
        ref("WarningTemplates"),
        body=ref("WarningTemplates"),
    ),
    Op(
        "get", "/api/v1/plans", "The threshold plans: reading type x colour x area -> template", ANY_STAFF, ref("Plans")
    ),
    Op("put", "/api/v1/plans", "Replace the threshold plans", "admin", ref("Plans"), body=ref("Plans")),
    # The area registry for maps (README "Maps").
    Op(
        "get",
        "/api/v1/areas.geojson",
        "The area registry as GeoJSON for maps; ?zoom=0..18 thins each ring to about a pixel at that zoom "
        "(zoom=raw: the registry's rings), ?level= keeps one level",
        answer=GEOJSON,
        query={
            "zoom": {"type": "string", "pattern": "^([0-9]|1[0-8]|raw)?$"},
            "level": choices("city", "district", "street", "community"),
        },
    ),
    # Issuing units: who issues which event types where (classified management; see README).
    Op(
        "get",
        "/api/v1/units",
        "Issuing units (configured false: the one implicit release centre)",
        "units.read: any staff role",
        obj({"units": ARRAY}, ("units",)),
    ),
    Op("post", "/api/v1/units", "Add an issuing unit", "admin", {"type": "object"}, 201, ref("UnitBody")),
    Op("get", "/api/v1/units/{id}", "One issuing unit", "units.read: any staff role"),
    Op("put", "/api/v1/units/{id}", "Replace a unit's record", "admin", body=ref("UnitBody")),
    Op("delete", "/api/v1/units/{id}", "Remove a unit (none under it, no users in it)", "admin", DELETED),
    Op(
        "get",
        "/api/v1/units/{id}/warnings",
        "What a unit issued, newest first (?under=true: and the units under it); the public sees published ones",
        answer=obj({"unit": {"type": "string"}, "warnings": ARRAY}, ("unit", "warnings")),
        query={"under": choices("true", "false", "1", "0"), "limit": LIMIT},
    ),
    Op(
        "get",
        "/api/v1/units/{id}/deliveries",
        "Delivery statistics of a unit's published messages, per message and per channel (?under=true)",
        DELIVERY_READERS,
        query={"under": choices("true", "false", "1", "0"), "limit": LIMIT},
    ),
    Op(
        "put",
        "/api/v1/users/{name}/unit",
        "Move a user to a unit",
        "admin",
        obj({"user": {"type": "string"}, "unit": {"type": "string"}}, ("user", "unit")),
        body=obj({"unit": {"type": "string"}}, ("unit",)),
    ),
    # Duty groups: a unit's WeCom, DingTalk and Feishu group robots (keys and secrets never shown back).
    Op(
        "get",
        "/api/v1/duty-groups",
        "Registered duty groups (?unit=)",
        "units.read: any staff role",
        obj({"duty_groups": ARRAY}, ("duty_groups",)),
        query={"unit": text_query("a unit id")},
    ),
    Op("post", "/api/v1/duty-groups", "Register a unit's group robot", "admin", status=201, body=ref("DutyGroupBody")),
    Op("get", "/api/v1/duty-groups/{id}", "One duty group", "units.read: any staff role"),
    Op("put", "/api/v1/duty-groups/{id}", "Replace a duty group", "admin", body=ref("DutyGroupBody")),
    Op("delete", "/api/v1/duty-groups/{id}", "Remove a duty group", "admin", DELETED),
]


def _parameters(op: Op) -> list[dict[str, Any]]:
    params = []
    for name in ("id", "name", "action", "tracking_code", "channel"):
        if f"{{{name}}}" not in op.path:
            continue
        kind = name
        if name == "id":
            kind = "warning" if op.path.startswith("/api/v1/warnings") else "incident"
            slugs = ("/api/v1/screens", "/api/v1/partners", "/api/v1/duty-groups")
            kind = "slug" if op.path.startswith(slugs) else kind
            kind = "unit" if op.path.startswith("/api/v1/units") else kind
        params.append({"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[kind]})
    params += [{"name": n, "in": "query", "required": False, "schema": s} for n, s in op.query.items()]
    return params


def _operation(op: Op) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "OK", "content": {"application/json": {"schema": op.answer}}}
    if op.path == "/api/v1/warnings":
        success["content"]["application/geo+json"] = {"schema": GEOJSON}
    if op.path == "/api/v1/areas.geojson":  # GeoJSON only
        success["content"] = {"application/geo+json": {"schema": GEOJSON}}
    if op.status == 201:
        success["headers"] = {"Location": {"description": "the new resource", "schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(op.status): success, **{str(s): success for s in op.also}}
    responses["4XX"] = {
        "description": "Error naming the field and reason, in the request's language (405 with Allow)",
        "content": ERROR_CONTENT,
    }
    responses["503"] = {
        "description": "Briefly unavailable (Redis away); try again after Retry-After seconds",
        "headers": {"Retry-After": RETRY_AFTER},
        "content": ERROR_CONTENT,
    }
    operation: dict[str, Any] = {"summary": op.summary, "responses": responses}
    if params := _parameters(op):
        operation["parameters"] = params
    if op.roles:
        operation["security"] = [{"bearer": []}, {"session": []}]
        operation["description"] = f"Roles: {op.roles}."
    else:  # public: limited per client address (reads in each process, reports in Redis)
        responses["429"] = {
            "description": "Too many requests from this address; try again after Retry-After seconds",
            "headers": {"Retry-After": RETRY_AFTER},
            "content": ERROR_CONTENT,
        }
    content = {
        **({"application/json": {"schema": op.body}} if op.body else {}),
        **{media: {"schema": schema} for media, schema in op.other_bodies.items()},
    }
    if content:
        operation["requestBody"] = {"required": op.body_required, "content": content}
    return operation


def openapi_document(settings: Settings) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "warncast",
            "version": "1",
            "description": "Graded early warnings (CAP 1.2) from draft to publication, and citizen reports.",
        },
        "servers": [{"url": settings.public_url}],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "warncast admin create-token; the scheme name in any case",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "wc_session",
                    "description": "console session; writes need the X-CSRF-Token header",
                },
            },
        },
    }
