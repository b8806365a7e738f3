"""What the maps load: the registry's areas as GeoJSON (simplified per zoom), the grade in force per
community for the public map, and Leaflet itself, served from its PyPI package (xstatic-leaflet)
under /static/vendor/ so no request leaves the server's origin.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import xstatic.pkg.leaflet as leaflet
import xstatic.pkg.leaflet_markercluster as markercluster
from aiohttp import web

from channels.cache import Rendering
from foundation.areas.geojson import MAX_ZOOM, MIN_ZOOM, feature_collection
from foundation.areas.registry import LEVELS
from foundation.errors import FieldError, ValidationFailed
from foundation.i18n import N_, tag_for
from publisher.taxonomy import GRADE_COLOUR, GRADES
from warncast.app_keys import AREAS, REDIS, WARNINGS
from warncast.web.conditional import respond
from warncast.web.live import outlets
from warncast.web.requests import json_dumps, locale

routes = web.RouteTableDef()
VENDOR = {"leaflet": Path(leaflet.BASE_DIR), "leaflet-markercluster": Path(markercluster.BASE_DIR)}


def add_vendor_static(app: web.Application) -> None:
    """/static/vendor/leaflet/… and /static/vendor/leaflet-markercluster/…, versioned like /static."""
    for name, path in VENDOR.items():
        app.router.add_static(f"/static/vendor/{name}", path, name=f"vendor-{name}", append_version=True)


def _zoom(request: web.Request) -> int | None:
    raw = request.query.get("zoom", "")
    if raw in ("", "raw"):
        return None
    if not raw.isdigit() or not MIN_ZOOM <= int(raw) <= MAX_ZOOM:
        message = N_("zoom must be a whole number from %(low)s to %(high)s, or raw.")
        raise ValidationFailed([FieldError("zoom", "range", message, {"low": MIN_ZOOM, "high": MAX_ZOOM})])
    return int(raw)


@routes.get("/api/v1/areas.geojson")
async def areas_geojson(request: web.Request) -> web.Response:
    """Every area of the registry as a GeoJSON FeatureCollection; ?zoom=N thins each ring to about a
    pixel at that zoom (the maps ask for the zoom they show), ?level= keeps one level."""
    zoom = _zoom(request)
    level = request.query.get("level", "")
    if level and level not in LEVELS:  # each answer is cached: only the few possible ones
        message = N_("level must be one of: %(choices)s.")
        raise ValidationFailed([FieldError("level", "choice", message, {"choices": ", ".join(LEVELS)})])
    registry = request.app[AREAS]
    await registry.refresh(request.app[REDIS])
    tag = tag_for(locale(request))

    def build() -> Rendering:
        areas = [a for a in registry.areas if not level or a.level == level]
        return Rendering(json_dumps(feature_collection(areas, zoom, tag)).encode(), "application/geo+json")

    async def render() -> Rendering:
        # Thinning thousands of rings takes a while once per zoom and registry version: not on the loop.
        return await asyncio.to_thread(build)

    rendering = await outlets(request).cache.get(("areas.geojson", zoom, level, tag), registry.version, 0.0, render)
    response = respond(request, rendering, vary="Cookie, Accept-Language")
    if response.status == 200:  # a 304 has no body to compress
        response.enable_compression()  # ~13x smaller: names and coordinates repeat (benchmarks/maps.py)
    return response


@routes.get("/map/warnings.json")
async def warnings_by_area(request: web.Request) -> web.Response:
    """For the public map: per community, the highest grade in force, its colour and the warnings
    there (id, grade, headline in the visitor's language). Nothing but what the public page shows."""
    registry = request.app[AREAS]
    await registry.refresh(request.app[REDIS])
    active = await request.app[WARNINGS].active()
    tag = tag_for(locale(request))
    rank = {g: i for i, g in enumerate(GRADES)}
    areas: dict[str, dict[str, object]] = {}
    for message in sorted(active, key=lambda m: -rank[m.content.grade]):
        texts = message.content.info.get(tag) or next(iter(message.content.info.values()))
        entry = {"id": message.id, "grade": message.content.grade, "headline": texts.headline}
        for code in registry.leaves_under(message.content.areas):
            area = areas.setdefault(
                code, {"grade": message.content.grade, "colour": GRADE_COLOUR[message.content.grade], "warnings": []}
            )
            warnings = area["warnings"]
            assert isinstance(warnings, list)
            warnings.append(entry)
    return web.json_response({"areas": areas}, dumps=json_dumps, headers={"Cache-Control": "no-cache"})
