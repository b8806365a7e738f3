"""Translations and locale negotiation.

Catalogs are the `.po` files under `locales/`, read with Babel when the app starts, so there is no
compiled `.mo` to go stale. A locale is chosen by explicit parameter, then cookie, then
Accept-Language. Adding a language is dropping in `locales/<locale>/LC_MESSAGES/messages.po` and
listing it in SUPPORTED.
"""

from __future__ import annotations

import functools
import gettext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_datetime
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


class PoTranslations(gettext.NullTranslations):
    """gettext over a Babel catalog read straight from a .po file."""

    def __init__(self, po_path: Path | None) -> None:
        super().__init__()
        self._messages: dict[str, str | tuple[str, ...]] = {}
        if po_path and po_path.exists():
            with po_path.open("rb") as fh:
                catalog = read_po(fh)
            for message in catalog:
                if message.id and message.string and not message.fuzzy:
                    key = message.id[0] if isinstance(message.id, tuple) else message.id
                    self._messages[key] = message.string

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
        return text % params if params else text


def format_dt(value: datetime, locale: str, tz: object, fmt: str = "medium") -> str:
    return format_datetime(value, format=fmt, tzinfo=tz, locale=Locale.parse(locale))


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, in the reader's locale."""
    return message
