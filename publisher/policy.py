"""Channel policy as data: which grades go to which push channels, and to whom.

Per grade and channel: `off` (nobody), `opted_in` (subscribers whose minimum grade allows it) or
`all` (every subscriber in the area, whatever their minimum grade: orange and red reach everyone).
Web, feeds and screens always carry every grade. New subscribers start at the channel's default
minimum grade, so by default blue reaches only chats that asked for blue, yellow all chats and the
phones that asked for yellow, orange and red every subscriber in the area.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from foundation.errors import FieldError, ValidationFailed
from foundation.i18n import N_
from foundation.store import keys
from publisher.taxonomy import GRADES

PUSH_CHANNELS = ("sms", "telegram")
MODES = ("off", "opted_in", "all")
DEFAULT_POLICY: dict[str, dict[str, str]] = {
    "blue": {"sms": "off", "telegram": "opted_in"},
    "yellow": {"sms": "opted_in", "telegram": "opted_in"},
    "orange": {"sms": "all", "telegram": "all"},
    "red": {"sms": "all", "telegram": "all"},
}
DEFAULT_MIN_GRADE = {"sms": "orange", "telegram": "yellow"}


def validate_policy(body: Any) -> dict[str, dict[str, str]]:
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "type", N_("The body must be a JSON object."))])
    errors: list[FieldError] = []
    for unknown in sorted(set(body) - set(GRADES)):
        errors.append(FieldError(unknown, "unknown_field", N_("Unknown field.")))
    policy: dict[str, dict[str, str]] = {}
    for grade in GRADES:
        row = body.get(grade, DEFAULT_POLICY[grade])
        if not isinstance(row, dict):
            errors.append(FieldError(grade, "type", N_("Must be an object of channel: mode.")))
            continue
        policy[grade] = {}
        for channel in PUSH_CHANNELS:
            mode = row.get(channel, DEFAULT_POLICY[grade][channel])
            if mode not in MODES:
                errors.append(
                    FieldError(
                        f"{grade}.{channel}",
                        "choice",
                        N_("Must be one of: %(choices)s."),
                        {"choices": ", ".join(MODES)},
                    )
                )
            policy[grade][channel] = mode
        for unknown in sorted(set(row) - set(PUSH_CHANNELS)):
            errors.append(FieldError(f"{grade}.{unknown}", "unknown_field", N_("Unknown field.")))
    if errors:
        raise ValidationFailed(errors)
    return policy


def grades_for(mode: str, grade: str) -> list[str]:
    """The minimum-grade index sets a plan reads for `grade` under `mode`."""
    if mode == "off":
        return []
    if mode == "all":
        return list(GRADES)
    return list(GRADES[: GRADES.index(grade) + 1])


class ChannelPolicy:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def get(self) -> dict[str, dict[str, str]]:
        raw = await self.redis.get(keys.CHANNEL_POLICY)
        stored = json.loads(raw) if raw else {}
        return {g: {**DEFAULT_POLICY[g], **stored.get(g, {})} for g in GRADES}

    async def save(self, policy: dict[str, dict[str, str]]) -> None:
        await self.redis.set(keys.CHANNEL_POLICY, json.dumps(policy))
