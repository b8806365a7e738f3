"""Translations and locale negotiation.

Catalogs are the `.po` files under `locales/`, read with Babel when the app starts, so there is no
compiled `.mo` to go stale. A locale is chosen by explicit parameter, then cookie, then
Accept-Language. Adding a language is dropping in `locales/<locale>/LC_MESSAGES/messages.po` and
listing it in SUPPORTED.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_skeleton
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"

# Babel locale id -> BCP 47 tag used in CAP `language`, `xml:lang` and API bodies.
SUPPORTED: dict[str, str] = {"zh_Hans": "zh-CN", "en": "en"}
DEFAULT_LOCALE = "zh_Hans"
LANG_COOKIE = "wc_lang"

_ALIASES = {
    "zh": "zh_Hans",
    "zh-cn": "zh_Hans",
    "zh_cn": "zh_Hans",
    "zh-hans": "zh_Hans",
    "zh_hans": "zh_Hans",
    "zh-hans-cn": "zh_Hans",
    "en": "en",
    "en-us": "en",
    "en-gb": "en",
    "en_us": "en",
}


def normalize_locale(value: str | None) -> str | None:
    """Map a user-supplied tag ("zh-CN", "EN", "zh_Hans") to a supported locale id, or None."""
    if not value:
        return None
    return _ALIASES.get(value.strip().lower().replace(" ", ""))


def language_name(tag: str, in_locale: str) -> str:
    """A language's name for a reader of `in_locale`: "中文（简体）", "English", "Chinese (Simplified)"."""
    target = normalize_locale(tag) or tag.replace("-", "_")
    reader = normalize_locale(in_locale) or in_locale
    try:
        return Locale.parse(target).get_display_name(Locale.parse(reader)) or tag
    except (ValueError, LookupError):
        return tag


def tag_for(locale: str) -> str:
    return SUPPORTED[locale]


def locale_for_tag(tag: str) -> str | None:
    return normalize_locale(tag)


@functools.lru_cache(maxsize=1024)  # per request; browsers send a few distinct Accept-Language values
def negotiate(param: str | None, cookie: str | None, accept_language: str | None) -> str:
    for candidate in (param, cookie):
        found = normalize_locale(candidate)
        if found:
            return found
    if accept_language:
        preferred = []
        for part in accept_language.split(","):
            tag = part.split(";")[0].strip()
            if tag and tag != "*":
                preferred.append(tag.replace("-", "_"))
        found = negotiate_locale(preferred, ["zh_Hans", "zh_CN", "zh", "en"], sep="_")
        if found:
            return normalize_locale(found.replace("_", "-")) or DEFAULT_LOCALE
    return DEFAULT_LOCALE


@functools.lru_cache(maxsize=16)
def _read_messages(po_path: Path, mtime_ns: int, size: int) -> dict[str, str | tuple[str, ...]]:
    """A .po file's translated messages, read once per version of the file (every app of a
    process, and every test's, shares them; nothing changes them after this)."""
    messages: dict[str, str | tuple[str, ...]] = {}
    with po_path.open("rb") as fh:
        catalog = read_po(fh)
    for message in catalog:
        if message.id and message.string and not message.fuzzy:
            key = message.id[0] if isinstance(message.id, tuple | list) else message.id
            text = message.string
            messages[key] = tuple(text) if isinstance(text, list | tuple) else text
    return messages


class PoTranslations(gettext.NullTranslations):
    """gettext over a Babel catalog read straight from a .po file."""

    def __init__(self, po_path: Path | None) -> None:
        super().__init__()
        self._messages: dict[str, str | tuple[str, ...]] = {}
        if po_path and po_path.exists():
            stat = po_path.stat()
            self._messages = _read_messages(po_path, stat.st_mtime_ns, stat.st_size)

    def gettext(self, message: str) -> str:
        found = self._messages.get(message)
        if isinstance(found, str) and found:
            return found
        return message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        found = self._messages.get(singular)
        if isinstance(found, tuple) and all(found):
            # zh has one plural form, en two: index by the catalog's own count.
            return found[0] if len(found) == 1 or n == 1 else found[1]
        return singular if n == 1 else plural


@dataclass(frozen=True)
class Catalogs:
    translations: dict[str, PoTranslations]

    @classmethod
    def load(cls, directory: Path = LOCALES_DIR) -> Catalogs:
        return cls({loc: PoTranslations(directory / loc / "LC_MESSAGES" / "messages.po") for loc in SUPPORTED})

    def get(self, locale: str) -> PoTranslations:
        return self.translations.get(locale) or self.translations[DEFAULT_LOCALE]

    def text(self, locale: str, message: str, **params: object) -> str:
        text = self.get(locale).gettext(message)
        if not params:
            return text
        shown = {k: v.render(self, locale) if isinstance(v, Localized) else v for k, v in params.items()}
        return text % shown


@dataclass(frozen=True)
class Localized:
    """An error parameter shown in the reader's language: a list of names given per BCP 47 tag (a
    unit's, an area's) or msgids (event names), translated and joined when the web layer renders
    the message (errors are raised before anyone knows the reader's language)."""

    parts: tuple[str | tuple[tuple[str, str], ...], ...]

    @classmethod
    def names(cls, *name_sets: dict[str, str]) -> Localized:
        return cls(tuple(tuple(names.items()) for names in name_sets))

    def render(self, catalogs: Catalogs, locale: str) -> str:
        tag = SUPPORTED.get(locale, "")
        texts = []
        for part in self.parts:
            if isinstance(part, str):
                texts.append(catalogs.get(locale).gettext(part))
            else:
                by_tag = dict(part)
                texts.append(by_tag.get(tag) or by_tag.get("en") or next(iter(by_tag.values()), ""))
        return join_list(texts, locale)


# Every time a person reads is in the city's zone, on the 24-hour clock, with the month as a word
# (never "12/2/26", which half the world reads as 12 February): CLDR skeletons give each locale its
# own order ("Dec 2, 2026, 14:27", "2026年12月2日 14:27"). "medium" names the zone's offset, so a
# reader elsewhere knows what the time means; "short" (tables, SMS) drops the year and the zone.
_DATE_SKELETON = {"medium": "yMMMd", "short": "MMMd", "date": "yMMMd"}


def format_dt(value: datetime, locale: str, tz: tzinfo | None, fmt: str = "medium") -> str:
    """A time for people: `fmt` "medium" (with year and zone), "short" (tables, SMS), "time"
    (hours and minutes) or "date"."""
    loc = Locale.parse(normalize_locale(locale) or locale)
    if loc.language == "zh" and not loc.territory:
        loc = Locale.parse("zh_Hans_CN")
    moment = value.astimezone(tz) if tz is not None and value.tzinfo is not None else value
    clock = format_skeleton("Hm", moment, locale=loc)
    if fmt == "time":
        return clock
    day = format_skeleton(_DATE_SKELETON.get(fmt, "yMMMd"), moment, locale=loc)
    if fmt == "date":
        return day
    text = str(loc.datetime_formats["medium"]).format(clock, day)
    return f"{text} ({utc_offset(moment)})" if fmt == "medium" else text


def utc_offset(moment: datetime) -> str:
    """ "UTC+8", "UTC-3:30", "UTC": the offset in force at that moment."""
    offset = moment.utcoffset()
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign, minutes = ("+" if minutes > 0 else "-"), abs(minutes)
    return f"UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")


# CLDR's narrow "and" list: the separator alone, no conjunction ("滨江区、兰江市", "Binjiang, Lanjiang"),
# as area names are listed in a warning. Babel keeps only the patterns a locale itself defines for a
# style (zh defines the end of its narrow list, not its start), so they are filled in along the
# style's CLDR fallbacks, narrow -> short -> standard, which `babel.lists.format_list` does not do.
_LIST_STYLES = ("standard-narrow", "standard-short", "standard")


@functools.lru_cache(maxsize=16)
def _list_patterns(locale: str) -> dict[str, str]:
    data = Locale.parse(normalize_locale(locale) or locale).list_patterns
    patterns: dict[str, str] = {}
    for style in reversed(_LIST_STYLES):
        if style in data:
            patterns.update({key: data[style][key] for key in data[style]})
    return patterns


def join_list(items: Iterable[str], locale: str) -> str:
    """Items as a list in `locale` (a locale id or a BCP 47 tag): "甲、乙、丙", "A, B, C"."""
    items = list(items)
    if len(items) < 2:
        return items[0] if items else ""
    patterns = _list_patterns(locale)
    if len(items) == 2 and "2" in patterns:
        return patterns["2"].format(*items)
    result = patterns["start"].format(items[0], items[1])
    for item in items[2:-1]:
        result = patterns["middle"].format(result, item)
    return patterns["end"].format(result, items[-1])


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, in the reader's locale."""
    return message
