"""SMS segment counting: GSM-7 (160, or 153 per part) or UCS-2 (70, or 67 per part).

One character outside GSM 03.38 (any Chinese, an emoji, a curly quote) makes the whole message
UCS-2. Extension characters cost two septets and surrogate pairs two code units; neither pair may be
split across parts.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # septets or UTF-16 code units
    segments: int


def count_segments(text: str) -> SegmentCount:
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        costs = [2 if c in GSM7_EXTENSION else 1 for c in text]
        encoding, single, per_part = "GSM-7", 160, 153
    else:
        costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
        encoding, single, per_part = "UCS-2", 70, 67
    total = sum(costs)
    if total <= single:
        return SegmentCount(encoding, total, 1 if text else 0)
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return SegmentCount(encoding, total, parts)


def fit(text: str, budget: int, keep_tail: str = "") -> str:
    """Shorten `text` (ending with an ellipsis) so that text + keep_tail fits in `budget` segments."""
    if count_segments(text + keep_tail).segments <= budget:
        return text + keep_tail
    # "…" is not GSM-7: it would turn an English message into UCS-2 and halve its room.
    ellipsis = "..." if count_segments(text + keep_tail).encoding == "GSM-7" else "…"
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits
        mid = (low + high + 1) // 2
        if count_segments(text[:mid].rstrip() + ellipsis + keep_tail).segments <= budget:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ellipsis + keep_tail
