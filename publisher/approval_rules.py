"""Approval quorum per grade, as data an admin edits.

Defaults: blue and yellow need one approval, orange and red two of which one by a chief, and a
cancellation one. The drafter never counts, whatever the rules say (separation of duties).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from foundation.errors import FieldError, ValidationFailed
from foundation.i18n import N_
from foundation.store import keys
from publisher.model import Message
from publisher.taxonomy import GRADES

RULE_KEYS = (*GRADES, "cancel")
DEFAULT_RULES: dict[str, dict[str, int]] = {
    "blue": {"approvals": 1, "chiefs": 0},
    "yellow": {"approvals": 1, "chiefs": 0},
    "orange": {"approvals": 2, "chiefs": 1},
    "red": {"approvals": 2, "chiefs": 1},
    "cancel": {"approvals": 1, "chiefs": 0},
}


@dataclass(frozen=True)
class Quorum:
    approvals: int
    chiefs: int

    def met_by(self, message: Message) -> bool:
        valid = [a for a in message.approvals if a.user != message.drafter]
        chiefs = [a for a in valid if "chief" in a.roles]
        return len(valid) >= self.approvals and len(chiefs) >= self.chiefs

    def missing(self, message: Message) -> tuple[int, int]:
        valid = [a for a in message.approvals if a.user != message.drafter]
        chiefs = sum(1 for a in valid if "chief" in a.roles)
        return max(0, self.approvals - len(valid)), max(0, self.chiefs - chiefs)


def validate_rules(body: Any) -> dict[str, dict[str, int]]:
    errors: list[FieldError] = []
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "type", N_("The body must be a JSON object."))])
    for unknown in sorted(set(body) - set(RULE_KEYS)):
        errors.append(FieldError(unknown, "unknown_field", N_("Unknown field.")))
    rules: dict[str, dict[str, int]] = {}
    for key in RULE_KEYS:
        rule = body.get(key, DEFAULT_RULES[key])
        if isinstance(rule, dict):
            for unknown in sorted(set(rule) - {"approvals", "chiefs"}):
                errors.append(FieldError(f"{key}.{unknown}", "unknown_field", N_("Unknown field.")))
        approvals = rule.get("approvals") if isinstance(rule, dict) else None
        chiefs = rule.get("chiefs", 0) if isinstance(rule, dict) else None
        if not isinstance(approvals, int) or isinstance(approvals, bool) or not 1 <= approvals <= 5:
            errors.append(
                FieldError(
                    f"{key}.approvals",
                    "range",
                    N_("Must be a whole number from %(min)s to %(max)s."),
                    {"min": 1, "max": 5},
                )
            )
            continue
        if not isinstance(chiefs, int) or isinstance(chiefs, bool) or not 0 <= chiefs <= approvals:
            errors.append(
                FieldError(
                    f"{key}.chiefs",
                    "range",
                    N_("Must be a whole number from %(min)s to %(max)s."),
                    {"min": 0, "max": approvals},
                )
            )
            continue
        rules[key] = {"approvals": approvals, "chiefs": chiefs}
    if errors:
        raise ValidationFailed(errors)
    return rules


class ApprovalRules:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def all(self) -> dict[str, dict[str, int]]:
        raw = await self.redis.get(keys.APPROVAL_RULES)
        return {**DEFAULT_RULES, **(json.loads(raw) if raw else {})}

    async def save(self, rules: dict[str, dict[str, int]]) -> None:
        await self.redis.set(keys.APPROVAL_RULES, json.dumps(rules))

    async def quorum_for(self, message: Message) -> Quorum:
        rules = await self.all()
        rule = rules["cancel"] if message.msg_type == "Cancel" else rules[message.content.grade]
        return Quorum(rule["approvals"], rule["chiefs"])
