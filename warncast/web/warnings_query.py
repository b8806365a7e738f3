"""`GET /api/v1/warnings` for machines, like the NWS alerts API.

Filters: `active=true`, `area=` (that area, those under it and those containing it), `point=lat,lon`,
`grade=` (one or more, comma-separated), `event=`, `status=` (Actual, Exercise, Test), `msg_type=`.
`Accept: application/geo+json` answers a GeoJSON FeatureCollection (coordinates lon, lat) whose
features carry the same properties as the JSON. Public reads are cached renderings with ETags.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from shapely.geometry import mapping

from channels.cache import Rendering, version_time
from foundation.areas.registry import AreaRegistry
from foundation.errors import ValidationFailed
from foundation.i18n import N_
from publisher.coverage import as_multipolygon, concerns_area, concerns_point, footprint
from publisher.model import Message
from publisher.taxonomy import EVENTS, GRADES, STATUSES
from publisher.validation import Collector

GEOJSON = "application/geo+json"
MSG_TYPES = ("Alert", "Update", "Cancel")


@dataclass(frozen=True)
class WarningFilter:
    active: bool = False
    area: str | None = None
    point: tuple[float, float] | None = None
    grades: tuple[str, ...] = ()
    event: str | None = None
    status: str | None = None
    msg_type: str | None = None

    def apply(self, messages: list[Message], registry: AreaRegistry) -> list[Message]:
        out = messages
        if self.grades:
            out = [m for m in out if m.content.grade in self.grades]
        if self.event:
            out = [m for m in out if m.content.event == self.event]
        if self.status:
            out = [m for m in out if m.content.status == self.status]
        if self.msg_type:
            out = [m for m in out if m.msg_type == self.msg_type]
        if self.area:
            out = [m for m in out if concerns_area(m.content, registry, self.area)]
        if self.point:
            lat, lon = self.point
            out = [m for m in out if concerns_point(m.content, registry, lat, lon)]
        return out


def _choice(errs: Collector, query: Any, field: str, choices: tuple[str, ...] | list[str]) -> str | None:
    value = query.get(field) or None
    if value is not None and value not in choices:
        errs.add(field, "choice", N_("Choose one of: %(choices)s."), choices=", ".join(choices))
        return None
    return value


def parse_filter(request: web.Request, registry: AreaRegistry) -> WarningFilter:
    query = request.query
    errs = Collector()
    active = query.get("active", "false").lower()
    if active not in ("true", "1", "false", "0"):
        errs.add("active", "choice", N_("Choose one of: %(choices)s."), choices="true, false")
    area = query.get("area") or None
    if area is not None and registry.get(area) is None:
        errs.add("area", "unknown", N_("No area with this code; see /api/v1/areas."))
    point = None
    if raw := query.get("point"):
        try:
            lat, lon = (float(x) for x in raw.split(","))
            if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat + lon):
                raise ValueError
            point = (lat, lon)
        except ValueError:
            errs.add("point", "format", N_("Use point=lat,lon."))
    grades = tuple(g for g in query.get("grade", "").split(",") if g)
    if any(g not in GRADES for g in grades):
        errs.add("grade", "choice", N_("Choose one or more of: %(choices)s."), choices=", ".join(GRADES))
    event = _choice(errs, query, "event", list(EVENTS))
    status = _choice(errs, query, "status", STATUSES)
    msg_type = _choice(errs, query, "msg_type", MSG_TYPES)
    if errs.errors:
        raise ValidationFailed(errs.errors)
    return WarningFilter(active in ("true", "1"), area, point, grades, event, status, msg_type)


def wants_geojson(request: web.Request) -> bool:
    return GEOJSON in request.headers.get("Accept", "")


def feature(message: Message, body: dict[str, Any], registry: AreaRegistry) -> dict[str, Any]:
    shape = footprint(message.content, registry)
    geometry = mapping(as_multipolygon(shape)) if shape is not None else None
    properties = {k: v for k, v in body.items() if k not in ("polygons", "circles")}
    return {"type": "Feature", "id": body["links"]["self"], "geometry": geometry, "properties": properties}


def render_list(
    messages: list[Message],
    bodies: list[dict[str, Any]],
    registry: AreaRegistry,
    *,
    geo: bool,
    version: str,
    active: bool,
) -> Rendering:
    if geo:
        document: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": [feature(m, b, registry) for m, b in zip(messages, bodies, strict=True)],
        }
        content_type = f"{GEOJSON}; charset=utf-8"
    else:
        document, content_type = {"warnings": bodies}, "application/json; charset=utf-8"
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    # What is in force changes by itself when the first of these warnings expires.
    until = min((m.content.expires.timestamp() for m in messages), default=math.inf) if active else math.inf
    return Rendering(body, content_type, last_modified=version_time(version), valid_until=until)
