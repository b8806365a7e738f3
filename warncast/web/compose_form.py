"""The compose form and the API's JSON body, both ways: what the console's compose and edit pages
send becomes the body `Warnings.create`/`edit`/`update` validate, and a stored warning becomes the
form's values again. Shapes travel as CAP text, one per line (publisher/cap_shapes.py)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from foundation.i18n import N_
from publisher.cap_shapes import cap_circle, cap_polygon
from publisher.model import Content
from warncast.web.requests import t


def form_to_body(form: MultiDictProxy[Any], languages: tuple[str, ...]) -> dict[str, Any]:
    """The compose form's fields in the API's JSON shape (empty fields left out)."""
    body: dict[str, Any] = {}
    for name in ("grade", "event", "status", "urgency", "certainty", "effective", "onset", "expires"):
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            body[name] = value.strip()
    body["areas"] = [a for a in form.getall("areas", []) if isinstance(a, str) and a]
    for name in ("polygons", "circles"):  # CAP text, one shape per line, typed or drawn (compose-map.js)
        raw = form.get(name)
        if isinstance(raw, str):  # present and empty: none (an edit deletes the draft's shapes)
            body[name] = shape_lines(raw)
    body["info"] = {
        tag: {part: str(form.get(f"{tag}.{part}", "")) for part in ("headline", "description", "instruction")}
        for tag in languages
    }
    return body


def shape_lines(text: str) -> list[str]:
    """The shapes of a coordinates field: one per line, blank lines left out (compose-map.js counts
    the lines the same way, so `polygons[2]` is the third shape in both)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


_SHAPE_FIELD = re.compile(r"(polygons|circles)\[(\d+)\](?:\[(\d+)\])?")


def shape_errors(request: web.Request, errors: dict[str, str], values: dict[str, Any]) -> dict[str, list[str]]:
    """The field errors about shapes, for under each coordinates field, each naming its line (as the
    drafter sees it, blank lines counted) and point."""
    out: dict[str, list[str]] = {"polygons": [], "circles": []}
    for field, message in errors.items():
        if not field.startswith(("polygons", "circles")):
            continue
        found = _SHAPE_FIELD.match(field)
        if found is None:  # about the whole field (too many shapes)
            out[field.split(".")[0]].append(message)
            continue
        name, index, point = found.group(1), int(found.group(2)), found.group(3)
        typed = [n for n, line in enumerate(str(values.get(name, "")).splitlines(), 1) if line.strip()]
        line = typed[index] if index < len(typed) else index + 1
        if point is None:
            out[name].append(t(request, N_("Line {line}: {reason}")).format(line=line, reason=message))
        else:
            template = t(request, N_("Line {line}, point {point}: {reason}"))
            out[name].append(template.format(line=line, point=int(point) + 1, reason=message))
    return out


def content_to_form(content: Content) -> dict[str, Any]:
    values: dict[str, Any] = {
        "grade": content.grade,
        "event": content.event,
        "status": content.status,
        "urgency": content.urgency,
        "certainty": content.certainty,
        "areas": content.areas,
        "effective": content.effective.strftime("%Y-%m-%dT%H:%M") if content.effective else "",
        "onset": content.onset.strftime("%Y-%m-%dT%H:%M") if content.onset else "",
        "expires": content.expires.strftime("%Y-%m-%dT%H:%M"),
        "polygons": "\n".join(cap_polygon(poly) for poly in content.polygons),
        "circles": "\n".join(cap_circle(c) for c in content.circles),
    }
    for tag, texts in content.info.items():
        for part in ("headline", "description", "instruction"):
            values[f"{tag}.{part}"] = getattr(texts, part)
    return values


def form_values(form: MultiDictProxy[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    values["areas"] = form.getall("areas", [])
    return values
