"""Drawn shapes in CAP 1.2's own text: a polygon as space-separated "lat,lon" pairs, the first equal
to the last (`polygon`), a circle as "lat,lon radius_km" (`circle`).

Written here for the CAP message and the console's coordinates fields; read here for what a drafter
types (or an API client sends as a string, at most MAX_TEXT characters: validation says so). Reading
only splits the text into the API's JSON shape and keeps any token that is not a number as it was,
so `publisher.validation` names every problem with the same field errors whichever shape the body
came in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from publisher.model import Circle

MAX_TEXT = 12_000  # 500 points of "31.234567,121.234567 ", with room to spare
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
# A drafter typing with a Chinese input method gets full-width commas and spaces; ", " is common too.
_WIDE = str.maketrans({"，": ",", "\u3000": " "})
_COMMA = re.compile(r"\s*,\s*")
_KM = re.compile(r"\s*km\s*$", re.IGNORECASE)


def cap_polygon(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{lat},{lon}" for lat, lon in points)


def cap_circle(circle: Circle) -> str:
    return f"{circle.lat},{circle.lon} {circle.radius_km}"


def _tidy(text: str) -> str:
    return _COMMA.sub(",", text.translate(_WIDE).strip())


def _value(token: str) -> float | str:
    return float(token) if _NUMBER.fullmatch(token) else token


def _pair(token: str) -> list[float | str] | str:
    parts = token.split(",")
    return [_value(p) for p in parts] if len(parts) == 2 else token


def polygon_from_text(text: str) -> list[Any]:
    """ "31.2,121.4 31.3,121.5 …" as [[31.2, 121.4], [31.3, 121.5], …]; a token that is not a pair
    stays a string (validation: "each point must be …")."""
    return [_pair(token) for token in _tidy(text).split()]


def circle_from_text(text: str) -> dict[str, Any] | None:
    """ "31.23,121.47 2" (or "… 2 km") as {"lat": 31.23, "lon": 121.47, "radius_km": 2.0}; None when
    the text is not a point and a radius."""
    tokens = _KM.sub("", _tidy(text)).split()
    if len(tokens) != 2 or not isinstance(point := _pair(tokens[0]), list):
        return None
    return {"lat": point[0], "lon": point[1], "radius_km": _value(tokens[1])}
