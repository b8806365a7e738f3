"""The JSON Schemas of /api/v1's bodies and answers, for the OpenAPI document (openapi.py).

Request schemas say what the server accepts as precisely as JSON Schema can: required fields,
lengths, patterns, enums, and that unknown fields are refused. What a schema cannot say (an area
code must exist, a state must allow the action, a phone number must be dialable) is a 409 or 422
naming the field. Answer schemas name every field a client may rely on; answers may grow fields.
"""

from __future__ import annotations

from typing import Any

from citizen_report.model import CATEGORIES, STATUS_NAMES
from citizen_report.signals import DEFAULT_THRESHOLDS
from publisher.cap_shapes import MAX_TEXT as MAX_SHAPE_TEXT
from publisher.policy import MODES
from publisher.taxonomy import CAP_CATEGORIES, CERTAINTIES, EVENTS, GRADES, RESPONSE_TYPES, STATUSES, URGENCIES

# Characters a stored text may not hold (publisher/validation.py refuses them); tab and newline may.
_CONTROL = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f\\u2028\\u2029\\ufeff"
SCREEN_ID = "^[a-z0-9][a-z0-9-]{0,39}$"
WARNING_ID = "^\\d{14}_\\d{14}_\\d+$"
PUSH_CHANNELS = ["sms", "telegram"]
LANGUAGES = ["zh-CN", "en"]


def text(max_length: int, *, required: bool = False) -> dict[str, Any]:
    """A text field: no control characters; a required one has a character that is not a space."""
    if required:
        return {"type": "string", "maxLength": max_length, "pattern": f"^[^{_CONTROL}]*[^\\s{_CONTROL}][^{_CONTROL}]*$"}
    return {"type": "string", "maxLength": max_length, "pattern": f"^[^{_CONTROL}]*$"}


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool = False, **more: Any) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties, **more}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


NULLABLE_STRING = {"type": ["string", "null"]}
NAMES = obj({"zh-CN": {"type": "string"}, "en": {"type": "string"}}, description="a name per language")
_POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "[lat, lon]"}
_TEXTS = obj(
    {"headline": text(160, required=True), "description": text(3000, required=True), "instruction": text(1000)},
    ("headline", "description"),
    closed=True,
)
_WARNING_FIELDS: dict[str, Any] = {
    "grade": {"enum": list(GRADES)},
    "event": {"enum": list(EVENTS)},
    "category": {"enum": list(CAP_CATEGORIES), "description": "must match the event's category"},
    "areas": {"type": "array", "items": {"type": "string"}, "maxItems": 200, "description": "codes, /api/v1/areas"},
    "polygons": {
        "type": "array",
        "maxItems": 10,
        "items": {
            "oneOf": [
                {"type": "array", "items": _POINT, "minItems": 4, "maxItems": 500},
                {"type": "string", "maxLength": MAX_SHAPE_TEXT, "description": 'CAP 1.2 text: "lat,lon lat,lon …"'},
            ]
        },
        "description": "closed rings, first point = last point; each as [lat, lon] points or CAP text",
    },
    "circles": {
        "type": "array",
        "maxItems": 10,
        "items": {
            "oneOf": [
                obj(
                    {"lat": {"type": "number"}, "lon": {"type": "number"}, "radius_km": {"type": "number"}},
                    ("lat", "lon", "radius_km"),
                ),
                {"type": "string", "maxLength": MAX_SHAPE_TEXT, "description": 'CAP 1.2 text: "lat,lon radius_km"'},
            ]
        },
    },
    "status": {"enum": list(STATUSES), "description": "Exercise and Test are drills"},
    "urgency": {"enum": list(URGENCIES)},
    "certainty": {"enum": list(CERTAINTIES)},
    "response_type": {"enum": list(RESPONSE_TYPES)},
    "effective": {"type": "string", "format": "date-time", "description": "default: at publication"},
    "onset": {"type": "string", "format": "date-time"},
    "expires": {"type": "string", "format": "date-time", "description": "at most 31 days after it takes effect"},
    "info": obj({"zh-CN": _TEXTS, "en": _TEXTS}, ("zh-CN", "en"), closed=True),
}
WARNING_BODY = obj(_WARNING_FIELDS, ("grade", "event", "expires", "info"), closed=True)
WARNING_PATCH = obj(_WARNING_FIELDS, closed=True, description="only the fields that change")
OPTIONAL_TEXT = {**text(1000), "type": ["string", "null"]}
# An action's body: its one text field; other fields are ignored (a client may send one body to all).
COMMENT = obj({"comment": OPTIONAL_TEXT})
REQUIRED_COMMENT = obj({"comment": text(1000, required=True)}, ("comment",))
REQUIRED_REASON = obj({"reason": text(1000, required=True)}, ("reason",))
REASON = obj({"reason": OPTIONAL_TEXT})

MESSAGE = obj(
    {
        "id": {"type": "string", "pattern": WARNING_ID},
        "thread": {"type": "string"},
        "msg_type": {"enum": ["Alert", "Update", "Cancel"]},
        "state": {"type": "string"},
        "sent": NULLABLE_STRING,
        "references": {"type": "array", "items": {"type": "string"}},
        "grade": {"enum": list(GRADES)},
        "event": {"type": "string"},
        "severity": {"type": "string"},
        "level": {"type": "string"},
        "drill": {"type": "boolean"},
        "expires": {"type": "string"},
        "info": {"type": "object", "additionalProperties": obj({"headline": {"type": "string"}})},
        "areas": {"type": "array", "items": obj({"code": {"type": "string"}, "name": {"type": "object"}}, ("code",))},
        "links": obj({"self": {"type": "string"}, "page": {"type": "string"}, "cap": {"type": "string"}}),
        "drafter": {"type": "string", "description": "staff only, like approvals, rejection, fast_path, review"},
        "approvals": {"type": "array", "items": {"type": "object"}},
    },
    ("id", "msg_type", "state", "grade", "event", "info", "areas", "links"),
)
MESSAGES = obj({"warnings": {"type": "array", "items": ref("Message")}}, ("warnings",))
GEOJSON = obj({"type": {"const": "FeatureCollection"}, "features": {"type": "array"}}, ("type", "features"))

QUORUM = obj(
    {
        "approvals": {"type": "integer", "minimum": 1, "maximum": 5},
        "chiefs": {"type": "integer", "minimum": 0},
        "chiefs_from": {"enum": ["unit", "centre"], "description": "centre: only the release centre's chiefs count"},
        "escalate_minutes": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1440,
            "description": "nobody acting this long pages the release centre's chiefs",
        },
    },
    ("approvals",),
    closed=True,
    description="chiefs: at most approvals",
)
APPROVAL_RULES = obj({key: QUORUM for key in (*GRADES, "cancel")}, closed=True, description="missing grades: default")
APPROVAL_RULES_ANSWER = obj({key: QUORUM for key in (*GRADES, "cancel")}, (*GRADES, "cancel"))
CHANNEL_POLICY = obj(
    {grade: obj({c: {"enum": list(MODES)} for c in PUSH_CHANNELS}, closed=True) for grade in GRADES},
    closed=True,
    description="per grade, per push channel: off, opted_in (only who asked for the grade) or all",
)
CHANNEL_POLICY_ANSWER = obj({grade: {"type": "object"} for grade in GRADES}, tuple(GRADES))
NAMES = obj({tag: {"type": "string", "maxLength": 80} for tag in LANGUAGES}, tuple(LANGUAGES))
TEMPLATE_TEXTS = obj(
    {
        "headline": {"type": "string", "maxLength": 160},
        "description": {"type": "string", "maxLength": 3000},
        "instruction": {"type": "string", "maxLength": 1000},
    },
    ("headline", "description"),
    closed=True,
)
WARNING_TEMPLATE = obj(
    {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,47}$"},
        "name": NAMES,
        "grade": {"enum": list(GRADES)},
        "event": {"enum": list(EVENTS)},
        "expires_hours": {"type": "integer", "minimum": 1, "maximum": 72},
        "info": obj({tag: TEMPLATE_TEXTS for tag in LANGUAGES}, tuple(LANGUAGES), closed=True),
    },
    ("id", "name", "grade", "event", "expires_hours", "info"),
    closed=True,
    description="texts may hold {place}, {value}, {unit}, {reading}, {time} and {sensor}",
)
WARNING_TEMPLATES = obj(
    {"templates": {"type": "array", "maxItems": 200, "items": WARNING_TEMPLATE}}, ("templates",), closed=True
)
CODES = {"type": "array", "maxItems": 200, "items": {"type": "string"}}
PLAN = obj(
    {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,47}$"},
        "name": NAMES,
        "reading": {"type": "string", "description": "a reading type of the thresholds"},
        "colour": {"enum": ["yellow", "red"]},
        "template": {"type": "string", "description": "a warning template's id"},
        "areas": CODES | {"description": "where the sensor is (with their communities); none: anywhere"},
        "sensors": {
            "type": "array",
            "maxItems": 200,
            "items": {"type": "string", "pattern": "^[A-Za-z0-9_.:\\-]{1,64}\\*?$"},
            "description": "sensor ids, or the start of one followed by *; none: any sensor",
        },
        "warn_areas": CODES | {"description": "the warning's areas; none: the sensor's own"},
        "enabled": {"type": "boolean"},
    },
    ("id", "name", "reading", "colour", "template"),
    closed=True,
)
PLANS = obj({"plans": {"type": "array", "maxItems": 500, "items": PLAN}}, ("plans",), closed=True)
ROUTING = obj(
    {
        "default": {"type": "string", "description": "one of the departments"},
        "departments": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[A-Za-z0-9_]{1,40}$"},
            "additionalProperties": obj(
                {"zh-CN": text(200, required=True), "en": text(200, required=True)}, ("zh-CN", "en")
            ),
        },
        "rules": {
            "type": "array",
            "items": obj(
                {
                    "category": {"enum": ["*", *CATEGORIES]},
                    "area": {"type": "string", "description": "an area code, or empty for every area"},
                    "department": {"type": "string", "description": "one of the departments"},
                },
                ("category", "department"),
            ),
        },
    },
    ("default", "departments", "rules"),
    description="category x area -> department; the first matching rule wins, else the default",
)
SCREEN_BODY = obj(
    {
        "id": {"type": "string", "pattern": SCREEN_ID, "description": "ignored by PUT"},
        "name": text(80, required=True),
        "location": {"anyOf": [text(160), {"type": "null"}]},
        "area": {"type": "string", "description": "area code; the screen shows warnings concerning it"},
        "languages": {"type": "array", "items": {"enum": LANGUAGES}, "minItems": 1, "uniqueItems": True},
        "orientation": {"enum": ["landscape", "portrait"]},
        "text_size": {"enum": ["normal", "large", "huge"]},
        "line_width": {"type": "integer", "minimum": 8, "maximum": 200, "description": "LED text columns"},
        "encoding": {"enum": ["utf-8", "gb18030", "gb2312", "ascii"], "description": "LED text encoding"},
        "rotate_seconds": {"type": "integer", "minimum": 3, "maximum": 120},
    },
    ("id", "name", "area"),
)
SCREEN_REPLACE = {
    **SCREEN_BODY,
    "properties": {**SCREEN_BODY["properties"], "id": {"description": "ignored: the path's"}},
    "required": ["name", "area"],
}
SCREEN = obj(
    {"id": {"type": "string"}, "name": {"type": "string"}, "area": {"type": "string"}, "languages": {"type": "array"}},
    ("id", "name", "area"),
)
PARTNER_BODY = obj(
    {
        "id": {"type": "string", "pattern": SCREEN_ID, "description": "ignored by PUT"},
        "name": text(80, required=True),
        "url": {
            "type": "string",
            "maxLength": 500,
            "pattern": "^https?://[^\\s/?#@]+([/?][^\\s#]*)?$",
            "description": "http(s) at a public address (see WARNCAST_PARTNER_ALLOW_NETWORKS), no credentials",
        },
        "format": {"enum": ["json", "cap"], "description": "our JSON with cap_url and kind, or the CAP XML"},
        "min_grade": {"enum": list(GRADES), "description": "default blue: every grade"},
        "areas": {"type": "array", "items": {"type": "string"}, "description": "area codes; empty: every area"},
        "active": {"type": "boolean"},
        "include_drills": {"type": "boolean"},
    },
    ("id", "name", "url"),
    closed=True,
)
PARTNER_REPLACE = {
    **PARTNER_BODY,
    "properties": {**PARTNER_BODY["properties"], "id": {"description": "ignored: the path's"}},
    "required": ["name", "url"],
}
PARTNER = obj(
    {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "url": {"type": "string"},
        "secret_hint": {"type": "string"},
    },
    ("id", "name", "url"),
)
_LOCATION = [
    {"required": ["lat", "lon"], "description": "a point"},
    {"required": ["area"], "description": "an area code"},
    {"required": ["address"], "description": "an address as typed"},
]
_REPORT_FIELDS: dict[str, Any] = {
    "category": {"enum": list(CATEGORIES), "description": "a service_code from /open311/v2/services.json"},
    "description": {"type": "string", "minLength": 5, "maxLength": 2000, "pattern": "\\S"},
    "lat": {"type": "number", "minimum": -90, "maximum": 90},
    "lon": {"type": "number", "minimum": -180, "maximum": 180},
    "area": {"type": "string", "description": "an area code from /api/v1/areas"},
    "address": {"type": "string", "maxLength": 200, "description": "empty: not given"},
    "contact": obj({"phone": NULLABLE_STRING, "email": NULLABLE_STRING}, closed=True),
    "reply_channel": {"enum": ["web", "sms"], "description": "sms needs contact.phone"},
    "consent": {"type": "boolean", "description": "may the city contact you about it"},
    "people_at_risk": {"type": "boolean"},
    "photo_location": {"type": "boolean", "description": "use the photo's GPS tag when no location is given"},
}
# null says "not given" as leaving the field out does.
_NULLABLE = {"lat", "lon", "area", "address", "contact", "reply_channel"}
REPORT_BODY = obj(
    {k: ({"anyOf": [v, {"type": "null"}]} if k in _NULLABLE else v) for k, v in _REPORT_FIELDS.items()},
    ("category", "description"),
    closed=True,
    anyOf=_LOCATION,
)
REPORT_FORM = obj(
    {
        **{
            name: {"type": "string", "maxLength": 16 * 1024}
            for name in (*_REPORT_FIELDS, "contact.phone", "contact.email")
            if name != "contact"
        },
        "photos": {"type": "array", "maxItems": 3, "items": {"type": "string", "contentMediaType": "image/jpeg"}},
    },
    ("category", "description"),
    closed=True,
    description="the same fields as form fields, with up to 3 photos (JPEG, PNG, WebP or GIF, 8 MB each)",
)
REPORT = obj(
    {
        "tracking_code": {"type": "string", "pattern": "^[0-9A-Z]{16}$"},
        "id": {"type": "string"},
        "category": {"type": "string"},
        "status": {"enum": list(STATUS_NAMES)},
        "status_url": {"type": "string"},
        "history": {"type": "array", "items": obj({"status": {"type": "string"}, "at": {"type": "string"}})},
    },
    ("tracking_code", "id", "category", "status"),
    description="no personal data, no free text",
)
STAFF_REPORT = obj(
    {
        "id": {"type": "string"},
        "description": {"type": "string"},
        "lat": {"type": ["number", "null"]},
        "lon": {"type": ["number", "null"]},
        "address": {"type": "string"},
        "photos": {"type": "array", "items": {"type": "string", "format": "uri"}},
        "contact": obj({"phone": {"type": "string"}, "email": {"type": "string"}}),
    },
    ("id", "description", "lat", "lon", "photos", "contact"),
    description="a report as staff see it: its text, place, photo links (staff only) and contact",
)
INCIDENT = obj(
    {
        "id": {"type": "string"},
        "kind": {"enum": ["reports", "breach", "alert"]},
        "status": {"type": "string"},
        "priority": {"type": "integer"},
        "reports": {"type": "array", "items": {"type": "string"}},
        "report_details": {"type": "array", "items": ref("StaffReport")},
    },
    ("id", "kind", "status", "reports", "report_details"),
)
READING = obj(
    {
        "sensor": {"type": "string", "pattern": "^[A-Za-z0-9_.:\\-]{1,64}$"},
        "type": {"enum": list(DEFAULT_THRESHOLDS), "description": "a type with thresholds"},
        "value": {"type": "number"},
        "time": {"type": "string", "format": "date-time", "description": "with its offset"},
        "area": {"type": ["string", "null"], "description": "an area code"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
    },
    ("sensor", "type", "value", "time"),
    dependentRequired={"lat": ["lon"], "lon": ["lat"]},
)
READINGS = {
    "oneOf": [READING, obj({"readings": {"type": "array", "items": READING, "minItems": 1}}, ("readings",))],
    "description": "one reading, or {readings: [...]}",
}
ERROR = obj(
    {
        "error": obj(
            {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": obj(
                        {"field": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
                        ("field", "code", "message"),
                    ),
                },
            },
            ("code", "message"),
        )
    },
    ("error",),
)
DELETED = obj({"deleted": {"type": "string"}}, ("deleted",))
# Issuing units and their duty groups (issue 16).
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

COMPONENTS: dict[str, Any] = {
    "WarningBody": WARNING_BODY,
    "WarningPatch": WARNING_PATCH,
    "Message": MESSAGE,
    "Messages": MESSAGES,
    "ApprovalRules": APPROVAL_RULES,
    "UnitBody": UNIT_BODY,
    "DutyGroupBody": DUTY_GROUP_BODY,
    "ChannelPolicy": CHANNEL_POLICY,
    "Routing": ROUTING,
    "WarningTemplates": WARNING_TEMPLATES,
    "Plans": PLANS,
    "ScreenBody": SCREEN_BODY,
    "ScreenReplace": SCREEN_REPLACE,
    "Screen": SCREEN,
    "PartnerBody": PARTNER_BODY,
    "PartnerReplace": PARTNER_REPLACE,
    "Partner": PARTNER,
    "ReportBody": REPORT_BODY,
    "Report": REPORT,
    "StaffReport": STAFF_REPORT,
    "Incident": INCIDENT,
    "Readings": READINGS,
    "Error": ERROR,
}
