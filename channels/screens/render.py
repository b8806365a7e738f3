"""What a screen shows: the warnings in force that concern its area, as JSON and as LED text.

The JSON is what the kiosk page draws (and what the live stream sends); every text is given in each
of the screen's languages so the page can rotate between them. The text feed is for LED
controllers: fixed-width lines (a CJK character takes two columns), one block per warning, in the
screen's encoding (GB2312 and GB18030 for older boards).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from channels.screens.registry import Screen
from foundation.areas.registry import AreaRegistry
from foundation.i18n import N_, Catalogs, locale_for_tag
from foundation.settings import Settings
from publisher.coverage import concerns_area
from publisher.model import Message
from publisher.taxonomy import GRADE_COLOUR, GRADE_LEVEL, GRADE_TEXT_COLOUR
from publisher.wording import word

LABELS = {
    "none": N_("No warnings are in force."),
    "todo": N_("What to do"),
    "areas": N_("Areas"),
    "stale": N_("Connection lost: the information shown may be out of date."),
}
# Anything an LED controller could take as a command: C0/C1 controls (ESC sequences), bidi overrides.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def screen_warnings(active: list[Message], screen: Screen, registry: AreaRegistry) -> list[Message]:
    return [m for m in active if concerns_area(m.content, registry, screen.area)]


def screen_state(
    screen: Screen, messages: list[Message], *, registry: AreaRegistry, settings: Settings, catalogs: Catalogs
) -> dict[str, Any]:
    area = registry.get(screen.area)
    warnings = []
    for message in messages:
        content = message.content
        texts = {}
        for tag in screen.languages:
            w = word(message, tag, registry=registry, catalogs=catalogs, settings=settings)
            texts[tag] = {
                "headline": w.headline,
                "instruction": w.instruction,
                "event": w.event,
                "grade": w.grade_warning,
                "areas": w.areas,
                "until": w.until,
                "drill": w.drill,
                "issuer": w.issuer,  # the issuing unit ("" without configured units)
            }
        warnings.append(
            {
                "id": message.id,
                "thread": message.thread,
                "msg_type": message.msg_type,
                "grade": content.grade,
                "level": GRADE_LEVEL[content.grade],
                "colour": GRADE_COLOUR[content.grade],
                "text_colour": GRADE_TEXT_COLOUR[content.grade],
                "drill": content.is_drill,
                "sent": message.sent,
                "expires": content.expires.isoformat(),
                "texts": texts,
                "links": {"page": f"{settings.public_url}/warnings/{message.id}"},
                "area_codes": list(content.areas),  # the kiosk's small map (static/kiosk-map.js)
            }
        )
    labels = {
        tag: {key: catalogs.text(locale_for_tag(tag) or "en", msgid) for key, msgid in LABELS.items()}
        for tag in screen.languages
    }
    return {
        "screen": {
            "id": screen.id,
            "name": screen.name,
            "location": screen.location,
            "area": {"code": screen.area, "name": area.name if area else {}},
            "languages": list(screen.languages),
            "orientation": screen.orientation,
            "text_size": screen.text_size,
            "rotate_seconds": screen.rotate_seconds,
            "show_map": screen.show_map,
            "time_zone": str(settings.tz),  # the kiosk's clock shows the city's time, not the device's
        },
        "warnings": warnings,
        "labels": labels,
    }


def state_bytes(state: dict[str, Any]) -> bytes:
    return json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode()


# The LED text feed.


def char_width(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_width(text: str) -> int:
    return sum(char_width(c) for c in text)


def wrap(text: str, width: int) -> list[str]:
    """Break text into lines of at most `width` columns, at spaces where the script has them."""
    lines: list[str] = []
    for paragraph in _UNSAFE.sub("", text).replace("\t", " ").split("\n"):
        line, used = "", 0
        for token in re.findall(r"\S+\s*|\s+", paragraph):
            token_width = text_width(token.rstrip())
            if used and used + token_width > width:
                lines.append(line.rstrip())
                line, used = "", 0
                token = token.lstrip()
            for char in token:  # tokens wider than a line (CJK runs) break anywhere
                w = char_width(char)
                if used + w > width:
                    lines.append(line.rstrip())
                    line, used = "", 0
                    if char == " ":
                        continue
                line += char
                used += w
        lines.append(line.rstrip())
    return [line for line in lines if line] or [""]


def pad(line: str, width: int) -> str:
    return line + " " * (width - text_width(line))


def screen_text(state: dict[str, Any], width: int) -> str:
    """One block per warning (each of the screen's languages in turn), blocks split by a blank line."""
    blocks = []
    for warning in state["warnings"]:
        lines = []
        for texts in warning["texts"].values():
            if texts["drill"]:
                lines += wrap(texts["drill"], width)
            lines += wrap(f"[{texts['grade']}] {texts['event']}", width)
            lines += wrap(texts["headline"], width)
            if texts["instruction"]:
                lines += wrap(texts["instruction"], width)
            lines += wrap(texts["areas"], width)
            lines += wrap(texts["until"], width)
        blocks.append("\n".join(pad(line, width) for line in lines))
    if not blocks:
        blocks = [
            "\n".join(pad(line, width) for labels in state["labels"].values() for line in wrap(labels["none"], width))
        ]
    return "\n\n".join(blocks) + "\n"


# What a board that cannot show a character shows instead, when its compatibility form (NFKC) does
# not help: typographic punctuation English text is full of.
_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})
# The IANA names of the encodings a board may take, for Content-Type (RFC 2046: "US-ASCII").
CHARSETS = {"ascii": "US-ASCII"}


def encode_text(text: str, encoding: str) -> bytes:
    """Encode for the board. A character it cannot show is replaced by its compatibility form (the
    narrow no-break space of English times becomes a space, a full-width parenthesis a plain one
    and a space) or plain punctuation; only what has neither becomes '?'. The columns stay the
    character's (the lines are already laid out)."""
    out = bytearray()
    for char in text:
        try:
            out += char.encode(encoding)
            continue
        except UnicodeEncodeError:
            pass
        width = char_width(char)
        plain = " " if unicodedata.category(char) == "Zs" else unicodedata.normalize("NFKC", char).translate(_PLAIN)
        try:
            fitted = plain.encode(encoding)[:width] if text_width(plain) == len(plain) else b""
        except UnicodeEncodeError:
            fitted = b""
        out += fitted.ljust(width) if fitted else b"?" * width
    return bytes(out)
