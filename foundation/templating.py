"""Jinja, set up once: autoescape, async, and the i18n extension with per-request translations.

`gettext`/`ngettext` are @pass_context callables that read the translations from the render
context, so one environment serves every locale at once and autoescaping survives.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from foundation.i18n import PoTranslations, format_dt

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@jinja2.pass_context
def _gettext(ctx: jinja2.runtime.Context, message: str) -> str:
    translations: PoTranslations = ctx["translations"]
    return translations.gettext(message)


@jinja2.pass_context
def _ngettext(ctx: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    translations: PoTranslations = ctx["translations"]
    return translations.ngettext(singular, plural, n)


@jinja2.pass_context
def _datetime(
    ctx: jinja2.runtime.Context, value: datetime | str | None, fmt: str = "medium", lang: str | None = None
) -> str:
    """`lang`: a card in another language than the page's (a locale id or a BCP 47 tag)."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_dt(value, lang or ctx["locale"], ctx["tz"], fmt)


def build_environment(*, enable_async: bool = True, names: Mapping[str, Any] | None = None) -> jinja2.Environment:
    """`names`: globals every template may use (the warning domain's grade colours, say)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html", "xml", "svg"], default_for_string=True),
        enable_async=enable_async,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]  # jinja2's i18n extension adds this method at runtime
    env.filters["datetime"] = _datetime
    env.globals.update(names or {})
    return env


async def render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    return await env.get_template(name).render_async(context)
