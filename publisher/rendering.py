"""Rendering a warning version for one recipient's language, from the templates in
templates/messages/. Residents get their own language, never the operator's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2

from foundation.areas.registry import AreaRegistry
from foundation.i18n import Catalogs, tag_for
from foundation.settings import Settings
from publisher.cap_xml import DRILL_PREFIX
from publisher.model import Message
from publisher.taxonomy import EVENTS, GRADE_NAMES

# What a message tells the resident: a new warning, a change, the all-clear, or the end of validity.
KINDS = {"Alert": "alert", "Update": "update", "Cancel": "cancel"}


@dataclass(frozen=True)
class View:
    """Everything a message template needs, already in the recipient's language."""

    kind: str
    grade: str
    grade_name: str
    event: str
    headline: str
    description: str
    instruction: str
    areas: str
    expires: datetime
    link: str
    drill_prefix: str
    is_drill: bool


def short_link(settings: Settings, message_id: str) -> str:
    return f"{settings.public_url}/w/{message_id}"


def build_view(
    message: Message, locale: str, *, kind: str | None, registry: AreaRegistry, settings: Settings, catalogs: Catalogs
) -> View:
    tag = tag_for(locale)
    t = catalogs.get(locale).gettext
    content = message.content
    texts = content.info.get(tag) or next(iter(content.info.values()))
    names = [registry.get(c).name_in(tag) for c in content.areas if registry.get(c)]  # type: ignore[union-attr]
    separator = "、" if tag.startswith("zh") else ", "
    return View(
        kind=kind or KINDS[message.msg_type],
        grade=content.grade,
        grade_name=t(GRADE_NAMES[content.grade]),
        event=t(EVENTS[content.event].name),
        headline=texts.headline,
        description=texts.description,
        instruction=texts.instruction,
        areas=separator.join(names),
        expires=content.expires,
        link=short_link(settings, message.id),
        drill_prefix=t(DRILL_PREFIX[content.status]) if content.is_drill else "",
        is_drill=content.is_drill,
    )


async def render_template(
    env: jinja2.Environment, name: str, view: View, locale: str, catalogs: Catalogs, settings: Settings, **extra: Any
) -> str:
    template = env.get_template(name)
    text = await template.render_async(
        view=view, translations=catalogs.get(locale), locale=locale, tz=settings.tz, **extra
    )
    return "\n".join(line.rstrip() for line in text.strip().splitlines())
