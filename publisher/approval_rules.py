"""Approval quorum per grade, as data an admin edits.

Defaults: blue and yellow need one approval, orange and red two of which one by a chief, and a
cancellation one. The drafter never counts, whatever the rules say (separation of duties). A rule
with `"chiefs_from": "centre"` (the default for orange and red) counts only chiefs of the release
centre: the cross-unit quorum a department's or district's serious warning needs.
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
DEFAULT_RULES: dict[str, dict[str, int | str]] = {
    "blue": {"approvals": 1, "chiefs": 0, "escalate_minutes": 60},
    "yellow": {"approvals": 1, "chiefs": 0, "escalate_minutes": 30},
    "orange": {"approvals": 2, "chiefs": 1, "chiefs_from": "centre", "escalate_minutes": 10},
    "red": {"approvals": 2, "chiefs": 1, "chiefs_from": "centre", "escalate_minutes": 5},
    "cancel": {"approvals": 1, "chiefs": 0, "escalate_minutes": 10},
}
# `escalate_minutes`: when nobody has acted on a warning waiting for approval for this long, the
# release centre's chiefs are paged (publisher/approval_pages.py). China's practice: the most severe
# warnings signed off and published within 5 minutes.


CHIEFS_FROM = ("unit", "centre")


@dataclass(frozen=True)
class Quorum:
    approvals: int
    chiefs: int
    centre: str = ""  # only chiefs of this unit (the release centre) count; "": any chief in scope

    def _counted(self, message: Message) -> tuple[int, int]:
        valid = [a for a in message.approvals if a.user != message.drafter]
        # An approval recorded before units existed has no unit: it was the release centre's.
        chiefs = [a for a in valid if "chief" in a.roles and (a.unit or self.centre) == (self.centre or a.unit)]
        return len(valid), len(chiefs)

    def met_by(self, message: Message) -> bool:
        valid, chiefs = self._counted(message)
        return valid >= self.approvals and chiefs >= self.chiefs

    def missing(self, message: Message) -> tuple[int, int]:
        valid, chiefs = self._counted(message)
        return max(0, self.approvals - valid), max(0, self.chiefs - chiefs)


def validate_rules(body: Any) -> dict[str, dict[str, int | str]]:
    errors: list[FieldError] = []
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "type", N_("The body must be a JSON object."))])
    for unknown in sorted(set(body) - set(RULE_KEYS)):
        errors.append(FieldError(unknown, "unknown_field", N_("Unknown field.")))
    rules: dict[str, dict[str, int | str]] = {}
    for key in RULE_KEYS:
        rule = body.get(key, DEFAULT_RULES[key])
        if isinstance(rule, dict):
            for unknown in sorted(set(rule) - {"approvals", "chiefs", "chiefs_from", "escalate_minutes"}):
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
        chiefs_from = rule.get("chiefs_from", DEFAULT_RULES[key].get("chiefs_from", "unit"))
        if chiefs_from not in CHIEFS_FROM:
            errors.append(
                FieldError(
                    f"{key}.chiefs_from",
                    "choice",
                    N_("Choose one of: %(choices)s."),
                    {"choices": ", ".join(CHIEFS_FROM)},
                )
            )
            continue
        escalate = rule.get("escalate_minutes", DEFAULT_RULES[key]["escalate_minutes"])
        if not isinstance(escalate, int) or isinstance(escalate, bool) or not 1 <= escalate <= 1440:
            errors.append(
                FieldError(
                    f"{key}.escalate_minutes",
                    "range",
                    N_("Must be a whole number from %(min)s to %(max)s."),
                    {"min": 1, "max": 1440},
                )
            )
            continue
        rules[key] = {"approvals": approvals, "chiefs": chiefs, "escalate_minutes": escalate}
        if chiefs_from == "centre":
            rules[key]["chiefs_from"] = "centre"
    if errors:
        raise ValidationFailed(errors)
    return rules


def escalate_seconds(rules: dict[str, dict[str, int | str]], message: Message) -> int:
    """Seconds `message` may wait for approval under `rules` before the centre's chiefs are paged."""
    rule = rules["cancel"] if message.msg_type == "Cancel" else rules[message.content.grade]
    return 60 * int(rule.get("escalate_minutes", DEFAULT_RULES["red"]["escalate_minutes"]))


class ApprovalRules:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def all(self) -> dict[str, dict[str, int | str]]:
        raw = await self.redis.get(keys.APPROVAL_RULES)
        return {**DEFAULT_RULES, **(json.loads(raw) if raw else {})}

    async def save(self, rules: dict[str, dict[str, int | str]]) -> None:
        await self.redis.set(keys.APPROVAL_RULES, json.dumps(rules))

    async def escalate_after(self, message: Message) -> int:
        """Seconds a warning may wait for approval before the release centre's chiefs are paged."""
        return escalate_seconds(await self.all(), message)

    async def quorum_for(self, message: Message, centre: str) -> Quorum:
        """`centre`: the release centre's unit id, whose chiefs a "chiefs_from": "centre" rule counts."""
        rules = await self.all()
        rule = rules["cancel"] if message.msg_type == "Cancel" else rules[message.content.grade]
        counted = centre if rule.get("chiefs_from") == "centre" else ""
        return Quorum(int(rule["approvals"]), int(rule["chiefs"]), counted)
