"""How the audit log reads for an officer: each recorded action code by its name, and details as
"key: value" text (names in Chinese stay Chinese, never JSON escapes). Unknown codes show as
recorded, so a new action is never hidden."""

from __future__ import annotations

import json
from typing import Any

from foundation.i18n import N_

ACTION_NAMES = {
    "create": N_("Draft created"),
    "edit": N_("Draft edited"),
    "submit": N_("Submitted for approval"),
    "approve": N_("Approved"),
    "reject": N_("Rejected"),
    "publish": N_("Published"),
    "schedule": N_("Scheduled"),
    "review": N_("Fast-path publication reviewed"),
    "update": N_("Update drafted"),
    "cancel": N_("Cancellation drafted"),
    "withdraw": N_("Withdrawn"),
    "expire": N_("Expired"),
    "login": N_("Logged in"),
    "login_failed": N_("Failed login"),
    "logout": N_("Logged out"),
    "user.create": N_("User created"),
    "token.create": N_("API token created"),
    "dispatch.replay": N_("Dead letters replayed"),
    "policy.approval_rules": N_("Approval rules changed"),
    "policy.channels": N_("Channel policy changed"),
    "policy.routing": N_("Routing changed"),
    "policy.plans": N_("Threshold plans changed"),
    "policy.templates": N_("Warning templates changed"),
    "partner.create": N_("Partner system registered"),
    "partner.edit": N_("Partner system changed"),
    "partner.rotate_secret": N_("Partner secret replaced"),
    "partner.delete": N_("Partner system removed"),
    "partner.deactivate": N_("Partner system switched off"),
    "screen.create": N_("Screen registered"),
    "screen.edit": N_("Screen changed"),
    "screen.delete": N_("Screen removed"),
    "incident.verify": N_("Incident verified"),
    "incident.assign": N_("Incident assigned"),
    "incident.progress": N_("Incident in progress"),
    "incident.resolve": N_("Incident resolved"),
    "incident.reject": N_("Incident rejected"),
    "incident.merge": N_("Incident merged"),
    "sms.start": N_("SMS subscription asked"),
    "sms.stop": N_("SMS subscription stopped"),
    "sms.report": N_("Report by SMS"),
}


def action_name(code: str) -> str | None:
    """The msgid naming `code`, or None (an `sms.*` reply without one of its own: shown as recorded)."""
    return ACTION_NAMES.get(code)


def readable_details(details: dict[str, Any]) -> list[tuple[str, str]]:
    return [(key, _readable(value)) for key, value in details.items()]


def _readable(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
