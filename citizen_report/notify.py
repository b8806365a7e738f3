"""The closed loop's outbox: every status change of a report becomes a notification to its reporter.

A notification is one entry in the durable stream `keys.REPORT_NOTIFICATIONS`, written in the same
atomic step as the change itself, with the text already rendered in the reporter's language. The
SMS and Telegram workers consume it (with a consumer group) and deliver on the channel the reporter
used. Reporters without a push channel (`web`) get no entries: their tracking page shows the status.

Fields: channel (sms | telegram | web), address (E.164 phone, chat id, or empty), locale,
tracking_code, status, text.
"""

from __future__ import annotations

import jinja2

from citizen_report.model import STATUS_NAMES, Report
from foundation.i18n import Catalogs

TEMPLATE = "report/notification.txt"


def pushed(report: Report) -> bool:
    """Whether status changes go out to this reporter (SMS or Telegram); web reporters read the
    tracking page, so nothing is queued for them."""
    return report.reply_channel in ("sms", "telegram") and bool(report.reply_address)


def render_notification(env: jinja2.Environment, catalogs: Catalogs, report: Report, public_url: str) -> dict[str, str]:
    """The outbox entry for the report's current status, in the reporter's language."""
    text = env.get_template(TEMPLATE).render(
        translations=catalogs.get(report.locale),
        locale=report.locale,
        status=report.status,
        status_name=STATUS_NAMES[report.status],
        code=report.tracking_code,
        note=report.status_note,
        life_safety=report.life_safety,
        url=f"{public_url}/report/{report.tracking_code}",
    )
    return notification(report, text.strip())


def notification(report: Report, text: str) -> dict[str, str]:
    """The outbox entry that carries `text` to the reporter."""
    return {
        "channel": report.reply_channel,
        "address": report.reply_address if report.reply_channel != "web" else "",
        "locale": report.locale,
        "tracking_code": report.tracking_code,
        "status": report.status,
        "text": text,
    }


def flatten(fields: dict[str, str]) -> list[str]:
    """Stream fields as a flat argument list (for the intake script)."""
    return [part for pair in fields.items() for part in pair]
