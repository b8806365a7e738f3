"""Turn an untrusted warning body (API JSON or console form) into `Content`, or name every problem.

Each problem is a FieldError with a dotted field path and a translatable reason; nothing is stored
unless the whole body is valid.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from shapely.geometry import Polygon
from shapely.validation import explain_validity

from foundation.areas.registry import AreaRegistry
from foundation.errors import FieldError, ValidationFailed
from foundation.i18n import N_
from foundation.text import without_bidi
from publisher.cap_shapes import MAX_TEXT, circle_from_text, polygon_from_text
from publisher.model import Circle, Content, InfoText
from publisher.taxonomy import CAP_CATEGORIES, CERTAINTIES, EVENTS, GRADES, RESPONSE_TYPES, STATUSES, URGENCIES

LIMITS = {"headline": 160, "description": 3000, "instruction": 1000}
# What a warning template leaves for a reading (or a drafter) to fill in (publisher/warning_templates.py):
# the area's name, the value and its unit, the reading type's name, the reading's local time, the sensor.
PLACEHOLDERS = ("place", "value", "unit", "reading", "time", "sensor")
UNFILLED = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
MAX_AREAS, MAX_POLYGONS, MAX_POINTS, MAX_CIRCLES = 200, 10, 500, 10
MAX_VALIDITY = timedelta(days=31)
FIELDS = {
    "grade",
    "event",
    "category",
    "areas",
    "expires",
    "info",
    "status",
    "urgency",
    "certainty",
    "response_type",
    "effective",
    "onset",
    "polygons",
    "circles",
}
# Control characters other than tab and newline have no place in a warning and can break
# SMS encoders and LED boards.
# shapely's words for a ring whose edges cross, with the point as "lon lat".
_CROSSING = re.compile(r"(?:Ring )?Self-intersection\[(\S+) (\S+)\]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029\ufeff]")


class Collector:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, code: str, message: str, /, **params: object) -> None:
        self.errors.append(FieldError(field, code, message, params))


def parse_content(
    body: Any,
    *,
    registry: AreaRegistry,
    languages: tuple[str, ...],
    tz: Any,
    now: datetime,
    base: Content | None = None,
) -> Content:
    """Validate `body`; with `base`, `body` is a partial update and missing fields come from it."""
    errs = Collector()
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "type", N_("The body must be a JSON object."))])
    for unknown in sorted(set(body) - FIELDS):
        errs.add(unknown, "unknown_field", N_("Unknown field."))
    merged: dict[str, Any] = dict(base.to_json()) if base else {}
    if base and isinstance(body.get("info"), dict):
        # A partial update may change one language's headline without restating the rest.
        info = {tag: dict(texts) for tag, texts in merged["info"].items()}
        for tag, texts in body["info"].items():
            info[tag] = {**info.get(tag, {}), **texts} if isinstance(texts, dict) else texts
        merged.update({k: v for k, v in body.items() if k != "info"}, info=info)
    else:
        merged.update(body)

    grade = _choice(errs, merged, "grade", GRADES, required=True)
    event_code = _choice(errs, merged, "event", tuple(EVENTS), required=True)
    category = _choice(errs, merged, "category", CAP_CATEGORIES, required=False)
    if event_code and category is None:
        category = EVENTS[event_code].category
    elif event_code and category and EVENTS[event_code].category != category:
        errs.add(
            "category",
            "mismatch",
            N_("Event %(event)s belongs to category %(category)s."),
            event=event_code,
            category=EVENTS[event_code].category,
        )
    status = _choice(errs, merged, "status", STATUSES, default="Actual")
    urgency = _choice(errs, merged, "urgency", URGENCIES, default="Expected")
    certainty = _choice(errs, merged, "certainty", CERTAINTIES, default="Likely")
    response = _choice(
        errs, merged, "response_type", RESPONSE_TYPES, default=EVENTS[event_code].response if event_code else "Prepare"
    )

    areas = _areas(errs, merged.get("areas"), registry)
    polygons = _polygons(errs, merged.get("polygons"))
    circles = _circles(errs, merged.get("circles"))
    if (
        not areas
        and not polygons
        and not circles
        and not any(e.field.startswith(("areas", "polygons", "circles")) for e in errs.errors)
    ):
        errs.add("areas", "required", N_("Name at least one area, polygon or circle."))

    effective = _datetime(errs, merged, "effective", tz, required=False)
    onset = _datetime(errs, merged, "onset", tz, required=False)
    expires = _datetime(errs, merged, "expires", tz, required=True)
    start = effective or now
    if expires:
        if expires <= now:
            errs.add("expires", "in_past", N_("Must be in the future."))
        elif expires <= start:
            errs.add("expires", "before_effective", N_("Must be after the effective time."))
        elif expires - start > MAX_VALIDITY:
            errs.add(
                "expires", "too_far", N_("A warning may be valid for at most %(days)s days."), days=MAX_VALIDITY.days
            )
        if onset and onset >= expires:
            errs.add("onset", "after_expires", N_("Must be before the expiry time."))

    info_texts = _info(errs, merged.get("info"), languages)
    if errs.errors:
        raise ValidationFailed(errs.errors)
    assert grade and event_code and category and expires is not None
    return Content(
        grade=grade,
        event=event_code,
        category=category,
        areas=areas,
        expires=expires,
        info=info_texts,
        status=status or "Actual",
        urgency=urgency or "Expected",
        certainty=certainty or "Likely",
        response_type=response or "Prepare",
        effective=effective,
        onset=onset,
        polygons=polygons,
        circles=circles,
    )


def _choice(
    errs: Collector,
    body: dict,
    name: str,
    allowed: tuple[str, ...],
    *,
    required: bool = False,
    default: str | None = None,
) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            errs.add(name, "required", N_("This field is required."))
        return default
    if not isinstance(value, str) or value not in allowed:
        errs.add(name, "choice", N_("Must be one of: %(choices)s."), choices=", ".join(allowed))
        return default
    return value


def _areas(errs: Collector, value: Any, registry: AreaRegistry) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        errs.add("areas", "type", N_("Must be a list of area codes."))
        return []
    if len(value) > MAX_AREAS:
        errs.add("areas", "too_many", N_("At most %(max)s items."), max=MAX_AREAS)
        return []
    out: list[str] = []
    for i, code in enumerate(value):
        if registry.get(code) is None:
            errs.add(f"areas[{i}]", "unknown_area", N_("Unknown area code %(code)s."), code=code[:40])
        elif code not in out:
            out.append(code)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _latlon(errs: Collector, field: str, lat: Any, lon: Any) -> tuple[float, float] | None:
    la, lo = _number(lat), _number(lon)
    if la is None or lo is None:
        errs.add(field, "type", N_("Latitude and longitude must be numbers."))
        return None
    if not (-90 <= la <= 90 and -180 <= lo <= 180):
        errs.add(field, "range", N_("Latitude must be within ±90 and longitude within ±180."))
        return None
    return (round(la, 6), round(lo, 6))


def _polygons(errs: Collector, value: Any) -> list[list[tuple[float, float]]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_POLYGONS:
        errs.add("polygons", "type", N_("Must be a list of at most %(max)s polygons."), max=MAX_POLYGONS)
        return []
    out = []
    for i, poly in enumerate(value):
        field = f"polygons[{i}]"
        if isinstance(poly, str):  # CAP's own text (the console's coordinates field)
            if len(poly) > MAX_TEXT:
                errs.add(field, "too_long", N_("At most %(max)s characters."), max=MAX_TEXT)
                continue
            poly = polygon_from_text(poly)
        if not isinstance(poly, list) or not 4 <= len(poly) <= MAX_POINTS:
            errs.add(
                field, "points", N_("A polygon needs 4 to %(max)s points, the last equal to the first."), max=MAX_POINTS
            )
            continue
        points = []
        for j, pair in enumerate(poly):
            if isinstance(pair, str):  # a token of CAP text that is not "lat,lon"
                errs.add(f"{field}[{j}]", "type", N_("Each point must be lat,lon, such as 31.23,121.47."))
                break
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                errs.add(f"{field}[{j}]", "type", N_("Each point must be [lat, lon]."))
                break
            point = _latlon(errs, f"{field}[{j}]", pair[0], pair[1])
            if point is None:
                break
            points.append(point)
        else:
            if points[0] != points[-1]:
                errs.add(field, "not_closed", N_("The polygon is not closed: the last point must equal the first."))
                continue
            shape = Polygon([(lon, lat) for lat, lon in points])
            if not shape.is_valid:
                reason = explain_validity(shape)
                if crossing := _CROSSING.match(reason):  # the usual one: said in words, at lat,lon
                    lon, lat = (round(float(x), 6) for x in crossing.groups())
                    message = N_("The polygon is not valid: its edges cross near %(point)s.")
                    errs.add(field, "invalid_polygon", message, point=f"{lat},{lon}")
                elif reason.startswith("Too few points"):  # corners repeated until fewer than 3 remain
                    errs.add(field, "invalid_polygon", N_("The polygon needs at least 3 different corners."))
                else:  # shapely's rarer reasons are English jargon: the fix is the same
                    message = N_("The polygon is not valid: draw it as one area whose edges neither touch nor cross.")
                    errs.add(field, "invalid_polygon", message)
                continue
            out.append(points)
    return out


def _circles(errs: Collector, value: Any) -> list[Circle]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_CIRCLES:
        errs.add("circles", "type", N_("Must be a list of at most %(max)s circles."), max=MAX_CIRCLES)
        return []
    out = []
    for i, circle in enumerate(value):
        field = f"circles[{i}]"
        if isinstance(circle, str):  # CAP's own text (the console's coordinates field)
            if len(circle) > MAX_TEXT:
                errs.add(field, "too_long", N_("At most %(max)s characters."), max=MAX_TEXT)
                continue
            circle = circle_from_text(circle)
            if circle is None:
                errs.add(field, "type", N_("Write a circle as lat,lon radius in km, such as 31.23,121.47 2."))
                continue
        if not isinstance(circle, dict):
            errs.add(field, "type", N_("Each circle must be an object with lat, lon and radius_km."))
            continue
        point = _latlon(errs, field, circle.get("lat"), circle.get("lon"))
        radius = _number(circle.get("radius_km"))
        if radius is None or not 0 < radius <= 500:
            errs.add(f"{field}.radius_km", "range", N_("The radius must be a number of kilometres between 0 and 500."))
            continue
        if point:
            out.append(Circle(point[0], point[1], radius))
    return out


def parse_datetime(value: Any, tz: Any) -> datetime | None:
    """ISO 8601; a time without offset is taken in the city's time zone (the console's inputs)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and 10 <= len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(tz).replace(microsecond=0)


def _datetime(errs: Collector, body: dict, name: str, tz: Any, *, required: bool) -> datetime | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            errs.add(name, "required", N_("This field is required."))
        return None
    parsed = parse_datetime(value, tz)
    if parsed is None:
        errs.add(name, "datetime", N_("Must be a date and time such as 2026-07-01T18:00:00+08:00."))
    return parsed


def clean_text(errs: Collector, field: str, value: Any, limit: int, *, required: bool) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errs.add(field, "required", N_("This field is required."))
        return ""
    if not isinstance(value, str):
        errs.add(field, "type", N_("Must be text."))
        return ""
    text = without_bidi(value.replace("\r\n", "\n")).strip()
    if _CONTROL.search(text):
        errs.add(field, "control_characters", N_("Contains control characters."))
        return ""
    if len(text) > limit:
        errs.add(field, "too_long", N_("At most %(max)s characters (got %(length)s)."), max=limit, length=len(text))
        return ""
    return text


def _info(errs: Collector, value: Any, languages: tuple[str, ...]) -> dict[str, InfoText]:
    if not isinstance(value, dict):
        errs.add("info", "required", N_("Give the texts per language: %(languages)s."), languages=", ".join(languages))
        return {}
    out: dict[str, InfoText] = {}
    for tag in value:
        if tag not in languages:
            errs.add(
                f"info.{tag[:20]}",
                "unknown_language",
                N_("Unsupported language; use %(languages)s."),
                languages=", ".join(languages),
            )
    for tag in languages:
        texts = value.get(tag)
        if not isinstance(texts, dict):
            errs.add(f"info.{tag}", "required", N_("The texts in this language are required."))
            continue
        for unknown in sorted(set(texts) - set(LIMITS)):
            errs.add(f"info.{tag}.{unknown[:20]}", "unknown_field", N_("Unknown field."))
        out[tag] = InfoText(
            headline=clean_text(errs, f"info.{tag}.headline", texts.get("headline"), LIMITS["headline"], required=True),
            description=clean_text(
                errs, f"info.{tag}.description", texts.get("description"), LIMITS["description"], required=True
            ),
            instruction=clean_text(
                errs, f"info.{tag}.instruction", texts.get("instruction"), LIMITS["instruction"], required=False
            ),
        )
        for part in LIMITS:  # a warning started from a template, its blanks not yet filled in
            if unfilled := UNFILLED.search(getattr(out[tag], part)):
                errs.add(
                    f"info.{tag}.{part}",
                    "placeholder",
                    N_("Replace {%(name)s} with what it stands for."),
                    name=unfilled[1],
                )
    return out
