"""The city's warning record (/console/record): a year of warnings and reports in tables, charts
and CSV, and the after-action timeline of each warning. The figures are computed below the web
layer, the warnings' in `publisher.record`, the reports' in `citizen_report.record`; this module
only puts them into tables in the reader's language."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from citizen_report.model import CATEGORIES
from citizen_report.record import STAGE_NAMES, ReportRecord, report_record
from foundation.access.roles import allowed
from foundation.errors import FieldError, ValidationFailed
from foundation.figures import Timing
from foundation.i18n import N_, tag_for
from publisher.record import (
    DELIVERY_TARGET_SECONDS,
    RECORD_CHANNELS,
    RELEASE_TARGET_SECONDS,
    STEP_NAMES,
    WarningRecord,
    timeline,
    warning_record,
)
from publisher.taxonomy import EVENTS, GRADE_COLOUR, GRADE_NAMES, GRADES
from warncast.app_keys import AREAS, AUDIT, REDIS, SETTINGS, WARNINGS
from warncast.web.pages import page
from warncast.web.requests import locale, login_required, require_actor, t
from warncast.web.tables import Bar, Chart, Table, to_csv

routes = web.RouteTableDef()
CHANNEL_NAMES = {"sms": N_("SMS"), "telegram": N_("Telegram"), "partner": N_("Partner systems")}
AREA_BARS = 15  # the areas with the most reports in the chart; the table has them all


def _year(request: web.Request) -> int:
    raw = request.query.get("year", "")
    if not raw:
        return datetime.now(request.app[SETTINGS].tz).year
    if not raw.isdigit() or not 2000 <= int(raw) <= 2100:
        raise ValidationFailed([FieldError("year", "invalid", N_("Give a year between 2000 and 2100, such as 2026."))])
    return int(raw)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _within(request: web.Request, timing: Timing, unit: str) -> str:
    over = timing.target is not None and timing.p95 is not None and timing.p95 > timing.target
    text = f"p95 {_round(timing.p95)} {unit}" if timing.p95 is not None else "—"
    return text + (" · " + t(request, N_("over the target")) if over else "")


def _warning_tables(request: web.Request, record: WarningRecord) -> list[Table]:
    _ = lambda msg, **kw: t(request, msg, **kw)  # noqa: E731 - the page's translation, briefly named
    seconds = _("s")
    grade = {g: _(GRADE_NAMES[g]) for g in GRADES}
    event = {code: _(EVENTS[code].name) if code in EVENTS else code for code in record.by_event}
    count = _("Warnings")
    by_grade = Table(
        "warnings_by_grade",
        _("Warnings by grade"),
        [_("Grade"), count],
        [[grade[g], n] for g, n in record.by_grade.items()],
        Chart(
            _("Warnings by grade"),
            _("Warnings published in %(year)s, one bar per grade, with the number beside it.", year=record.year),
            [Bar(grade[g], n, str(n), GRADE_COLOUR[g]) for g, n in record.by_grade.items()],
        ),
    )
    by_event = Table(
        "warnings_by_event",
        _("Warnings by event"),
        [_("Event"), count],
        [[event[e], n] for e, n in record.by_event.items()],
        Chart(
            _("Warnings by event"),
            _("Warnings published in %(year)s, one bar per event, most frequent first.", year=record.year),
            [Bar(event[e], n, str(n)) for e, n in record.by_event.items()],
        ),
    )
    months = [f"{record.year}-{m:02d}" for m in record.by_month]
    by_month = Table(
        "warnings_by_month",
        _("Warnings by month"),
        [_("Month"), *grade.values(), _("Total")],
        [
            [label, *(per[g] for g in GRADES), sum(per.values())]
            for label, per in zip(months, record.by_month.values(), strict=True)
        ],
        Chart(
            _("Warnings by month"),
            _("Warnings published in each month of %(year)s, all grades together.", year=record.year),
            [
                Bar(label, sum(per.values()), str(sum(per.values())))
                for label, per in zip(months, record.by_month.values(), strict=True)
            ],
        ),
    )
    red_target = RELEASE_TARGET_SECONDS["red"]
    release = Table(
        "release_time",
        _("Time from draft to publication"),
        [_("Grade"), _("Messages"), f"p50 ({seconds})", f"p95 ({seconds})", _("Target (s)"), _("Within the target")],
        [
            [grade[g], tm.count, _round(tm.p50), _round(tm.p95), tm.target, tm.within]
            for g, tm in record.release.items()
        ],
        Chart(
            _("Time from draft to publication (p95)"),
            _(
                "The 95th percentile of the time from draft to publication per grade, in seconds; "
                "the line marks the %(minutes)s-minute target for red warnings.",
                minutes=red_target // 60,
            ),
            [
                Bar(grade[g], tm.p95 or 0, _within(request, tm, seconds), GRADE_COLOUR[g])
                for g, tm in record.release.items()
            ],
            target=red_target,
            target_label=_("red target: %(minutes)s min", minutes=red_target // 60),
        ),
        note=_(
            "New warnings and updates, from the moment the draft was created to its publication; drills, "
            "tests and messages scheduled ahead are left out."
        ),
    )
    channel = {ch: _(CHANNEL_NAMES[ch]) for ch in RECORD_CHANNELS}
    minutes = DELIVERY_TARGET_SECONDS // 60
    delivery = Table(
        "delivery_time",
        _("Delivery time per channel"),
        [
            _("Channel"),
            _("Deliveries"),
            _("First delivery p50 (s)"),
            _("First delivery p95 (s)"),
            _("Last delivery p50 (s)"),
            _("Last delivery p95 (s)"),
            _("Everyone reached within %(minutes)s min", minutes=minutes),
        ],
        [
            [
                channel[ch],
                last.count,
                _round(first.p50),
                _round(first.p95),
                _round(last.p50),
                _round(last.p95),
                last.within,
            ]
            for ch, first, last in ((ch, record.first_delivery[ch], record.last_delivery[ch]) for ch in RECORD_CHANNELS)
        ],
        Chart(
            _("Time to reach every recipient (p95)"),
            _(
                "The 95th percentile of the time from publication to the last delivery, per channel, in "
                "seconds; the line marks the public target of %(minutes)s minutes.",
                minutes=minutes,
            ),
            [
                Bar(channel[ch], record.last_delivery[ch].p95 or 0, _within(request, record.last_delivery[ch], seconds))
                for ch in RECORD_CHANNELS
            ],
            target=DELIVERY_TARGET_SECONDS,
            target_label=_("target: %(minutes)s min", minutes=minutes),
        ),
        note=_("One delivery is one message version (or expiry notice) on one channel, from publication on."),
    )
    rows = record.warnings
    listing = Table(
        "warnings",
        _("Warnings of the year"),
        [
            _("Identifier"),
            _("Grade"),
            _("Event"),
            _("Published"),
            _("Draft to publication (s)"),
            _("Updates"),
            _("Lifted"),
        ],
        [
            [
                w["id"],
                grade[w["grade"]],
                event.get(w["event"], w["event"]),
                w["sent"],
                _round(w["release_seconds"]),
                w["updates"],
                _("yes") if w["cancelled"] else _("no"),
            ]
            for w in rows
        ],
        links={n: f"/console/record/warnings/{w['id']}" for n, w in enumerate(rows)},
        note=_("Open a warning for its after-action timeline."),
    )
    return [by_grade, by_event, by_month, release, delivery, listing]


def _report_tables(request: web.Request, record: ReportRecord) -> list[Table]:
    _ = lambda msg, **kw: t(request, msg, **kw)  # noqa: E731
    registry, tag = request.app[AREAS], tag_for(locale(request))
    reports = _("Reports")

    def category(code: str) -> str:
        return _(CATEGORIES[code].name) if code in CATEGORIES else code

    def area(code: str) -> str:
        found = registry.get(code) if code else None
        return found.name_in(tag) if found else (code or _("no area given"))

    by_category = Table(
        "reports_by_category",
        _("Reports by category"),
        [_("Category"), reports],
        [[category(c), n] for c, n in record.by_category.items()],
        Chart(
            _("Reports by category"),
            _("Citizen reports received in %(year)s, one bar per category.", year=record.year),
            [Bar(category(c), n, str(n)) for c, n in record.by_category.items()],
        ),
    )
    by_area = Table(
        "reports_by_area",
        _("Reports by area"),
        [_("Area"), _("Code"), reports],
        [[area(c), c, n] for c, n in record.by_area.items()],
        Chart(
            _("Reports by area"),
            _("The %(count)s areas with the most citizen reports in %(year)s.", count=AREA_BARS, year=record.year),
            [Bar(area(c), n, str(n)) for c, n in list(record.by_area.items())[:AREA_BARS]],
        ),
    )
    by_hour = Table(
        "reports_by_hour",
        _("Reports by hour of the day"),
        [_("Hour"), reports],
        [[f"{h:02d}:00", n] for h, n in enumerate(record.by_hour)],
        Chart(
            _("Reports by hour of the day"),
            _("Citizen reports in %(year)s by the hour they came in, local time.", year=record.year),
            [Bar(f"{h:02d}:00", n, str(n)) for h, n in enumerate(record.by_hour)],
        ),
    )
    rows, bars = [], []
    for stage, per_priority in record.triage.items():
        for priority, tm in per_priority.items():
            label = _("Priority %(priority)s", priority=priority)
            rows.append(
                [_(STAGE_NAMES[stage]), label, tm.count, tm.p50, tm.p95, tm.within, tm.count - (tm.within or 0)]
            )
            if tm.count:
                late = tm.count - (tm.within or 0)
                text = _("p95 %(minutes)s min · %(late)s late", minutes=tm.p95, late=late)
                bars.append(Bar(f"{_(STAGE_NAMES[stage])} · {label}", tm.p95 or 0, text))
    triage = Table(
        "triage_time",
        _("Triage time against each incident's deadline"),
        [
            _("Stage"),
            _("Priority"),
            _("Incidents"),
            _("p50 (min)"),
            _("p95 (min)"),
            _("By the deadline"),
            _("Late"),
        ],
        rows,
        Chart(
            _("Triage time (p95)"),
            _(
                "The 95th percentile of the minutes from an incident's first report to its first action and "
                "to its resolution, per priority, with how many passed their deadline."
            ),
            bars,
        ),
        note=_("Each incident is measured against its own deadline, which its priority sets."),
    )
    return [by_category, by_area, by_hour, triage]


@routes.get("/console/record")
async def record_page(request: web.Request) -> web.StreamResponse:
    login_required(request)
    require_actor(request, "record.read")
    year, wanted = _year(request), request.query.get("format", "html")
    if wanted not in ("html", "csv"):
        raise ValidationFailed([FieldError("format", "invalid", N_("Choose the format html or csv."))])
    tz = request.app[SETTINGS].tz
    warnings = await warning_record(request.app[REDIS], year, tz)
    reports = await report_record(request.app[REDIS], year)
    tables = _warning_tables(request, warnings) + _report_tables(request, reports)
    if wanted == "csv":
        by_name = {table.name: table for table in tables}
        name = request.query.get("table", "")
        if name not in by_name:
            raise ValidationFailed(
                [
                    FieldError(
                        "table",
                        "unknown",
                        N_("No such table; choose one of: %(names)s."),
                        {"names": ", ".join(by_name)},
                    )
                ]
            )
        return web.Response(
            body=to_csv(by_name[name]).encode(),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="warncast-record-{year}-{name}.csv"'},
        )
    return await page(
        request,
        "console/record.html",
        year=year,
        this_year=datetime.now(tz).year,
        warnings_total=sum(warnings.by_grade.values()),
        reports_total=reports.total,
        tables=tables,
    )


@routes.get("/console/record/warnings/{id}")
async def warning_timeline(request: web.Request) -> web.Response:
    login_required(request)
    actor = require_actor(request, "record.read")
    message = await request.app[WARNINGS].get(request.match_info["id"])
    found = await timeline(request.app[REDIS], request.app[AUDIT], message, request.app[SETTINGS].tz)
    show_audit = allowed(actor.roles, "audit.read")
    first = found.messages[0] if found.messages else message
    return await page(
        request,
        "console/record_timeline.html",
        first=first,
        timeline=found,
        step_names=STEP_NAMES,
        channel_names=CHANNEL_NAMES,
        audit=found.audit if show_audit else [],
        show_audit=show_audit,
        tag=tag_for(locale(request)),
    )
