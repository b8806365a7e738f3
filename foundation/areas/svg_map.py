"""Render an area registry as a standalone, accessible inline SVG map.

Communities are drawn as filled paths (the unit a warning colours in),
district outlines and names go on top for orientation.  Every piece of text
and every attribute value is XML-escaped, because area names and fills come
from data we do not control.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from shapely.geometry import Polygon

SVG_NS = "http://www.w3.org/2000/svg"
DEFAULT_FILL = "#e5e7eb"  # light grey: an area with no warning
VIEW_WIDTH = 1000.0
PADDING = 12.0

# Characters XML 1.0 forbids even when escaped; hostile names could carry them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTR_ENTITIES = MappingProxyType({'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})
_LABEL_FALLBACK = MappingProxyType({"zh-CN": "区域地图", "en": "Area map"})
# District names in view units: 1000 units drawn 330 px wide on a phone make 40 units about 13 px.
LABEL_SIZE = 40


@dataclass(frozen=True)
class MapPoint:
    """A located item drawn on the map (an incident on the triage board): a dot with its name."""

    lat: float
    lon: float
    label: str
    css_class: str = ""
    href: str | None = None


def render_svg(
    areas: list[dict],
    fills: dict[str, str],
    *,
    locale: str = "en",
    href: Callable[[dict], str | None] | None = None,
    title: str = "",
    points: Sequence[MapPoint] = (),
) -> str:
    """Return an inline ``<svg>`` drawing every community of ``areas``.

    ``fills`` maps *community* codes to a CSS colour and is only looked up by
    community code: the caller resolves district/city-wide warnings down to
    communities first.  Communities without an entry get a light grey.

    ``locale`` picks the name shown in tooltips and labels ("zh-CN", with
    "zh", "zh_Hans", "zh-Hans", "zh_CN" accepted as aliases; anything else
    means English).  If ``href(area)`` returns a URL the community's path is
    wrapped in a link; URLs with a scheme other than http(s) are ignored so
    data can never smuggle in ``javascript:``.  ``title`` becomes the map's
    accessible name. A map with links is a group of named links (an image may hold nothing
    interactive); one without is an image. ``points`` are drawn as dots above everything, each with
    its label as its name. Sizing is left to the page's stylesheet: an inline ``style`` would be
    refused by the site's Content-Security-Policy.
    """
    lang = _normalise_locale(locale)
    communities = [a for a in areas if a.get("level") == "community"]
    districts = [a for a in areas if a.get("level") == "district"]
    project, height = _projection(communities + districts)

    label = title or _LABEL_FALLBACK[lang]
    interactive = href is not None or any(p.href for p in points)
    parts = [
        f'<svg xmlns={_attr(SVG_NS)} viewBox="0 0 {_num(VIEW_WIDTH)} {_num(height)}"'
        f' width="100%" preserveAspectRatio="xMidYMid meet"'  # sizing: app.css (the CSP refuses style="")
        f' role="{"group" if interactive else "img"}" aria-label={_attr(label)} lang={_attr(lang)}>',
        f"<title>{_text(label)}</title>",
        '<g stroke="#ffffff" stroke-width="0.8" stroke-linejoin="round">',
    ]
    for area in communities:
        path = (
            f"<path d={_attr(_path_data(area['polygon'], project))}"
            f" fill={_attr(fills.get(area['code'], DEFAULT_FILL))}"
            f" data-code={_attr(area['code'])}>"
            f"<title>{_text(_name(area, lang))}</title></path>"
        )
        url = _safe_href(href(area)) if href is not None else None
        name = _attr(_name(area, lang))
        parts.append(f"<a href={_attr(url)} aria-label={name}>{path}</a>" if url else path)
    parts.append("</g>")

    # Outlines and labels must not swallow clicks meant for the community links.
    parts.append('<g fill="none" stroke="#374151" stroke-width="2.2" stroke-linejoin="round" pointer-events="none">')
    for area in districts:
        parts.append(f"<path d={_attr(_path_data(area['polygon'], project))} data-code={_attr(area['code'])}/>")
    parts.append("</g>")
    parts.append(
        f'<g font-family="system-ui, sans-serif" font-size="{LABEL_SIZE}" font-weight="600"'
        ' fill="#111827" text-anchor="middle" dominant-baseline="middle"'
        ' stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"'
        ' pointer-events="none">'
    )
    for area in districts:
        x, y = project(*_label_point(area["polygon"]))
        parts.append(f'<text x="{_num(x)}" y="{_num(y)}">{_text(_name(area, lang))}</text>')
    parts.append("</g>")
    parts.extend(_point(point, project) for point in points)
    parts.append("</svg>")
    return "".join(parts)


def _point(point: MapPoint, project: Callable[[float, float], tuple[float, float]]) -> str:
    x, y = project(point.lat, point.lon)
    dot = (
        f'<circle cx="{_num(x)}" cy="{_num(y)}" r="14" class={_attr("map-point " + point.css_class)}'
        f' stroke="#ffffff" stroke-width="3"><title>{_text(point.label)}</title></circle>'
    )
    url = _safe_href(point.href)
    return f"<a href={_attr(url)} aria-label={_attr(point.label)}>{dot}</a>" if url else dot


def _normalise_locale(locale: str) -> str:
    """Map the accepted spellings of simplified Chinese to "zh-CN"; default English."""
    key = locale.replace("_", "-").lower()
    return "zh-CN" if key in {"zh", "zh-cn", "zh-hans", "zh-hans-cn"} else "en"


def _name(area: dict, lang: str) -> str:
    """The area's name in ``lang``, falling back to the other language, then the code."""
    names = area.get("name") or {}
    other = "en" if lang == "zh-CN" else "zh-CN"
    return str(names.get(lang) or names.get(other) or area["code"])


def _projection(
    areas: Iterable[dict],
) -> tuple[Callable[[float, float], tuple[float, float]], float]:
    """Equirectangular projection fitted to ``areas``; returns it and the view height.

    x is shrunk by cos(mean latitude) so shapes keep their proportions; y is
    flipped so north is up.
    """
    points = [(lat, lon) for area in areas for lat, lon in area["polygon"]]
    if not points:
        return (lambda lat, lon: (0.0, 0.0)), VIEW_WIDTH * 0.6
    lats = [lat for lat, _ in points]
    lons = [lon for _, lon in points]
    squash = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span_x = max((max(lons) - min(lons)) * squash, 1e-9)
    span_y = max(lats) - min(lats)
    scale = (VIEW_WIDTH - 2 * PADDING) / span_x
    west, north = min(lons), max(lats)

    def project(lat: float, lon: float) -> tuple[float, float]:
        return (PADDING + (lon - west) * squash * scale, PADDING + (north - lat) * scale)

    return project, span_y * scale + 2 * PADDING


def _path_data(
    ring: Sequence[Sequence[float]],
    project: Callable[[float, float], tuple[float, float]],
) -> str:
    """SVG path data for a closed ``[[lat, lon], ...]`` ring."""
    if len(ring) > 1 and list(ring[0]) == list(ring[-1]):
        ring = ring[:-1]  # "Z" closes the path; no need to repeat the first point
    coords = [project(lat, lon) for lat, lon in ring]
    return "M" + "L".join(f"{_num(x)},{_num(y)}" for x, y in coords) + "Z"


def _label_point(ring: Sequence[Sequence[float]]) -> tuple[float, float]:
    """A (lat, lon) point inside the ring, so labels never land outside their district."""
    point = Polygon([(lon, lat) for lat, lon in ring]).representative_point()
    return point.y, point.x


def _safe_href(url: str | None) -> str | None:
    """Keep relative and http(s) URLs; drop anything else (javascript:, data:, ...)."""
    if not url:
        return None
    cleaned = _XML_INVALID.sub("", url).strip()
    try:
        scheme = urlsplit(cleaned).scheme.lower()
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    return cleaned if scheme in {"", "http", "https"} else None


def _num(value: float) -> str:
    """One decimal is plenty at ~1000 units wide; avoid a stray "-0.0"."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _text(value: str) -> str:
    return escape(_XML_INVALID.sub("", str(value)))


def _attr(value: str) -> str:
    """A double-quoted, escaped attribute value (quotes included).

    Unlike ``quoteattr`` this never switches to single quotes, so output stays
    predictable; whitespace is kept as character references so it survives
    attribute-value normalisation.
    """
    return '"' + escape(_XML_INVALID.sub("", str(value)), _ATTR_ENTITIES) + '"'
