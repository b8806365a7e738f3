"""Text from outside, made safe to store: bidirectional embedding, override and isolate controls
removed.

U+202A–U+202E and U+2066–U+2069 reorder what follows them when displayed, so a report or a warning
carrying them reads differently in CAP, feeds, pages, SMS and Open311 than what was typed (a
"Trojan Source" reversal of a phone number or a link). Chinese and English text never needs them;
right-to-left scripts are laid out by the Unicode bidi algorithm without them. Every stored text
passes through `without_bidi`; the web layer applies it to every body it reads.
"""

from __future__ import annotations

import re
from typing import Any

BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# The same controls in a JSON text: as UTF-8 bytes or as \u escapes (hex digits in either case).
BIDI_IN_JSON = re.compile(rb"\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]|\\u20(?:2[a-eA-E]|6[6-9])")


def without_bidi(text: str) -> str:
    return BIDI_CONTROLS.sub("", text) if BIDI_CONTROLS.search(text) else text


def json_without_bidi(raw: bytes, value: Any) -> Any:
    """`without_bidi_in(value)` for `value` decoded from the JSON text `raw`; one scan of the bytes
    (in C) instead of a walk of every string, since nearly every body holds none."""
    return without_bidi_in(value) if BIDI_IN_JSON.search(raw) else value


def without_bidi_in(value: Any) -> Any:
    """`without_bidi` on every string of a JSON value (keys too), leaving other values as they are."""
    if isinstance(value, str):
        return without_bidi(value)
    if isinstance(value, list):
        return [without_bidi_in(item) for item in value]
    if isinstance(value, dict):
        return {without_bidi_in(key): without_bidi_in(item) for key, item in value.items()}
    return value
