"""Before approval: every channel's exact text per language, its cost, and the reach."""

from __future__ import annotations

from typing import Any

from foundation.i18n import SUPPORTED
from publisher.coverage import affected_areas, impact
from publisher.dispatch.context import DispatchContext
from publisher.model import Message
from publisher.policy import PUSH_CHANNELS, grades_for


async def preview(ctx: DispatchContext, message: Message) -> dict[str, Any]:
    policy = await ctx.policy.get()
    grade = message.content.grade
    areas = affected_areas(message.content, ctx.registry)
    channels: dict[str, Any] = {}
    for name in PUSH_CHANNELS:
        channel = ctx.channels.get(name)
        mode = policy[grade][name]
        reach = (
            0
            if mode == "off"
            else await ctx.subscribers.count_active(
                areas, name, grades_for(mode, grade), drill=message.content.is_drill
            )
        )
        texts = {}
        if channel is not None:
            for locale, tag in SUPPORTED.items():
                rendition = await channel.render(message, locale)
                texts[tag] = {
                    "text": rendition.text,
                    "segments": rendition.units if name == "sms" else None,
                    "encoding": rendition.encoding or None,
                    "characters": len(rendition.text),
                }
        channels[name] = {
            "policy": mode,
            "reach": reach,
            "outbox_mode": bool(channel and channel.outbox_mode),
            "texts": texts,
        }
    # The communities it reaches, for the compose page's map (static/compose-map.js).
    coverage = sorted(code for code in areas if code not in ctx.registry.children)
    return {
        "id": message.id,
        "grade": grade,
        "drill": message.content.is_drill,
        "channels": channels,
        "coverage": coverage,
        "impact": {**impact(message.content, ctx.registry), "partners": await _partners(ctx, message, areas)},
    }


async def _partners(ctx: DispatchContext, message: Message, areas: set[str]) -> int:
    """How many partner systems the warning would be pushed to."""
    partner = ctx.channels.get("partner")
    return len(await partner.recipients(message, areas)) if partner is not None else 0
