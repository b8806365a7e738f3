"""Open311 GeoReport v2: the spec's documents built from our reports, in XML and JSON.

Field lists follow http://wiki.open311.org/GeoReport_v2. Public rows carry no contact details,
the location rounded to about 100 m, the area's name instead of the typed address, and the
description only once an officer has verified the report (free text is unmoderated until then).
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from citizen_report.model import CATEGORIES, RECEIVED, REJECTED, RESOLVED, STATUS_NAMES, Report
from foundation.areas.registry import AreaRegistry
from foundation.i18n import N_, Catalogs, tag_for

SPEC = "http://wiki.open311.org/GeoReport_v2"
FORMATS = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
PUBLIC_DECIMALS = 3
# XML element names of list items, by the list's name.
_ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}
PEOPLE_AT_RISK = "people_at_risk"


def services_list(catalogs: Catalogs, locale: str) -> list[dict[str, Any]]:
    return [
        {
            "service_code": c.code,
            "service_name": catalogs.text(locale, c.name),
            "description": catalogs.text(locale, c.name),
            "metadata": True,
            "type": "realtime",
            "keywords": ",".join(c.keywords),
            "group": catalogs.text(locale, c.group),
        }
        for c in CATEGORIES.values()
    ]


def service_definition(code: str, catalogs: Catalogs, locale: str) -> dict[str, Any]:
    return {
        "service_code": code,
        "attributes": [
            {
                "variable": True,
                "code": PEOPLE_AT_RISK,
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": "",
                "order": 1,
                "description": catalogs.text(locale, N_("Is anyone in danger now?")),
                "values": [
                    {"key": "yes", "name": catalogs.text(locale, N_("Yes"))},
                    {"key": "no", "name": catalogs.text(locale, N_("No"))},
                ],
            }
        ],
    }


def request_row(
    report: Report,
    *,
    catalogs: Catalogs,
    locale: str,
    registry: AreaRegistry,
    departments: dict[str, dict[str, str]],
    expected: str = "",
) -> dict[str, Any]:
    tag = tag_for(locale)
    closed = report.status in (RESOLVED, REJECTED)
    notes = catalogs.text(locale, STATUS_NAMES[report.status])
    if report.status_note:
        notes = f"{notes}: {report.status_note}"
    area = registry.get(report.area) if report.area else None
    department = departments.get(report.department or "", {})
    moderated = report.status not in (RECEIVED, REJECTED)
    return {
        "service_request_id": report.id,
        "status": "closed" if closed else "open",
        "status_notes": notes,
        "service_name": catalogs.text(locale, CATEGORIES[report.category].name),
        "service_code": report.category,
        "description": report.description if moderated else "",
        "agency_responsible": department.get(tag, ""),
        "service_notice": "",
        "requested_datetime": report.created,
        "updated_datetime": report.updated,
        "expected_datetime": expected,
        "address": area.name_in(tag) if area else "",
        "address_id": "",
        "zipcode": "",
        **_location(report),
        "media_url": "",
    }


def _location(report: Report) -> dict[str, float]:
    """lat and long, rounded for the public; absent (not "") for a request without a location:
    a client reads the numbers as numbers."""
    if report.lat is None or report.lon is None:
        return {}
    return {"lat": round(report.lat, PUBLIC_DECIMALS), "long": round(report.lon, PUBLIC_DECIMALS)}


# Our field names as Open311's POST names them, for its error descriptions.
FIELD_NAMES = {
    "lon": "long",
    "area": "address_id",
    "address": "address_string",
    "category": "service_code",
    "contact.phone": "phone",
    "contact.email": "email",
    "phone": "phone",
    "email": "email",
    PEOPLE_AT_RISK: f"attribute[{PEOPLE_AT_RISK}]",
}


def field_name(field: str) -> str:
    return FIELD_NAMES.get(field, field)


def discovery(base_url: str, contact: str) -> dict[str, Any]:
    return {
        "changeset": "2025-01-01T00:00:00+08:00",
        "contact": contact,
        "key_service": "API keys are issued by the city operations centre (warncast admin create-token).",
        "endpoints": [
            {
                "specification": SPEC,
                "url": f"{base_url}/open311/v2",
                "changeset": "2025-01-01T00:00:00+08:00",
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


def render(fmt: str, root: str, value: Any) -> tuple[str, str]:
    """(body, content type). JSON: the value itself (top-level arrays for lists, per the spec)."""
    if fmt == "json":
        return json.dumps(value, ensure_ascii=False), FORMATS["json"]
    element = etree.Element(root)
    _fill(element, value)
    body = etree.tostring(element, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return body.decode("utf-8"), FORMATS["xml"]


def _fill(element: Any, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _fill(etree.SubElement(element, _ITEMS.get(element.tag, "item")), item)
    elif isinstance(value, dict):
        for name, child in value.items():
            _fill(etree.SubElement(element, name), child)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def errors_doc(errors: list[tuple[int, str]]) -> list[dict[str, Any]]:
    return [{"code": code, "description": description} for code, description in errors]
