"""The "received" notification of a new report, rendered once per language instead of once per report.

Receipts differ only in the tracking code (and the status URL made from it), the language and the
life-safety line, so the text is rendered with a placeholder code once per (text environment,
translations, language, life-safety flag, public URL) and each report's code is put in afterwards.
Rendering the template for every report cost about a quarter of an intake's CPU time
(benchmarks/intake.py). The memo only repeats what a pure rendering would return, so it is not
state in the sense of the house style. tests/test_reports.py compares `receipt` with
`render_notification` for reports that differ in every field, so a template that starts to use
another field fails there instead of sending a wrong receipt.
"""

from __future__ import annotations

from functools import lru_cache

import jinja2

from citizen_report.model import RECEIVED, Report
from citizen_report.notify import notification, render_notification
from foundation.i18n import Catalogs, PoTranslations

_CODE = "\x00tracking-code\x00"  # NUL occurs in no template or translation: it marks only the code


def receipt(env: jinja2.Environment, catalogs: Catalogs, report: Report, public_url: str) -> dict[str, str]:
    """Exactly `render_notification(env, catalogs, report, public_url)`, cheaper for new reports."""
    if report.status != RECEIVED or report.status_note:
        return render_notification(env, catalogs, report, public_url)
    text = _text(env, catalogs.get(report.locale), report.locale, report.life_safety, public_url)
    return notification(report, text.replace(_CODE, report.tracking_code))


@lru_cache(maxsize=64)
def _text(env: jinja2.Environment, translations: PoTranslations, locale: str, life_safety: bool, url: str) -> str:
    probe = Report(
        id="",
        tracking_code=_CODE,
        category="other",
        description="",
        lat=None,
        lon=None,
        area=None,
        address="",
        location_source="address",
        photos=[],
        channel="web",
        reply_channel="web",
        reply_address="",
        contact={},
        locale=locale,
        life_safety=life_safety,
        created="",
        updated="",
    )
    return render_notification(env, Catalogs({locale: translations}), probe, url)["text"]
