"""Triage actions on incidents, and the closed loop back to every reporter.

An action changes the incident and each of its reports in one transaction, and in the same
transaction appends one notification per reporter to the outbox (`notify.py`). The audit log gets
an entry for every action.
"""

from __future__ import annotations

import json

from redis.exceptions import WatchError

from citizen_report.desk import ReportDesk
from citizen_report.incidents import MERGED, Incident, load_incident, priority_for, store_incident
from citizen_report.intake import load_reports
from citizen_report.model import ASSIGNED, DUPLICATE, IN_PROGRESS, REJECTED, RESOLVED, TERMINAL, TRANSITIONS, VERIFIED
from citizen_report.notify import pushed, render_notification
from citizen_report.record import count_triage
from citizen_report.routing import load_routing
from foundation.access.audit import Actor
from foundation.errors import Conflict, FieldError, NotFound, ValidationFailed
from foundation.i18n import N_, tag_for
from foundation.store import keys
from foundation.store.streams import as_fields

ACTIONS = {
    "verify": VERIFIED,
    "assign": ASSIGNED,
    "progress": IN_PROGRESS,
    "resolve": RESOLVED,
    "reject": REJECTED,
    "merge": DUPLICATE,
}
ACTION_NAMES = {
    "verify": N_("Verify"),
    "assign": N_("Assign"),
    "progress": N_("Mark in progress"),
    "resolve": N_("Resolve"),
    "reject": N_("Reject"),
    "merge": N_("Merge into"),
}


async def act(
    desk: ReportDesk,
    actor: Actor,
    incident_id: str,
    action: str,
    *,
    reason: str = "",
    department: str = "",
    into: str = "",
) -> Incident:
    if action not in ACTIONS:
        raise ValidationFailed([FieldError("action", "unknown", N_("Unknown action."))])
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise ValidationFailed([FieldError("reason", "too_long", N_("At most %(max)s characters."), {"max": 500})])
    if action == "reject" and not reason:
        raise ValidationFailed([FieldError("reason", "required", N_("Say why the report is rejected."))])
    table = await load_routing(desk.redis)
    if action == "assign" and department not in table["departments"]:
        raise ValidationFailed([FieldError("department", "unknown", N_("Choose one of the departments."))])
    for _attempt in range(20):
        try:
            incident = await _apply(desk, incident_id, action, reason, department, into, table)
            break
        except WatchError:
            continue
    else:  # pragma: no cover - twenty concurrent changes to one incident
        raise Conflict(N_("The incident changed while you acted; try again."))
    details = {"reason": reason} if reason else {}
    if department:
        details["department"] = department
    if into:
        details["into"] = into
    await desk.audit.append(actor.label, f"incident.{action}", incident_id, **details)
    return incident


async def _apply(
    desk: ReportDesk, incident_id: str, action: str, reason: str, department: str, into: str, table: dict
) -> Incident:
    redis, now = desk.redis, desk.now()
    async with redis.pipeline(transaction=True) as pipe:
        watched = [keys.incident(incident_id)] + ([keys.incident(into)] if into else [])
        await pipe.watch(*watched)
        incident = await load_incident(desk, incident_id)
        if incident is None:
            raise NotFound(N_("No incident with this id."))
        status = ACTIONS[action]
        target: Incident | None = None
        if action == "merge":
            target = await _merge_target(desk, incident, into)
        elif incident.status == MERGED or status not in TRANSITIONS.get(incident.status, frozenset()):
            raise Conflict(
                N_("This incident is %(status)s; it cannot move to %(target)s."),
                status=incident.status,
                target=status,
            )
        await pipe.watch(*watched, *(keys.report(r) for r in incident.reports))
        reports = list((await load_reports(desk, incident.reports)).values())  # one MGET
        pipe.multi()
        if target is not None:
            incident.status, incident.merged_into, incident.note = MERGED, target.id, reason
            target.reports.extend(r.id for r in reports)
            target.life_safety = target.life_safety or incident.life_safety
            target.priority = priority_for(target.category, target.life_safety, target.count)
            target.updated = now.isoformat()
            pipe.zrem(keys.BOARD_INDEX, incident.id)
            pipe.zrem(keys.open_incidents(incident.category), incident.id)
            store_incident(pipe, target, now)
        else:
            count_triage(
                pipe, incident.created, incident.deadline, incident.priority, incident.status, status, now, desk.tz
            )
            incident.status, incident.note = status, reason
            if action == "assign":
                incident.department = department
            if status in TERMINAL:
                pipe.zrem(keys.open_incidents(incident.category), incident.id)
        incident.updated = now.isoformat()
        store_incident(pipe, incident, now)
        for report in reports:
            if report.status == REJECTED:
                continue
            report.status = status
            report.status_note = _note(action, reason, incident, table, report.locale)
            report.updated = now.isoformat()
            report.department = (target or incident).department
            report.incident = (target or incident).id
            report.history.append({"status": status, "at": now.isoformat(), "note": report.status_note})
            pipe.set(keys.report(report.id), json.dumps(report.as_record(), ensure_ascii=False))
            if pushed(report):
                fields = render_notification(desk.text_env, desk.catalogs, report, desk.settings.public_url)
                pipe.xadd(keys.REPORT_NOTIFICATIONS, as_fields(fields))
        await pipe.execute()
    return target or incident


async def _merge_target(desk: ReportDesk, incident: Incident, into: str) -> Incident:
    target = await load_incident(desk, into) if into else None
    if target is None or target.id == incident.id:
        raise ValidationFailed([FieldError("into", "unknown", N_("Choose another open incident to merge into."))])
    if target.status in TERMINAL or target.status == MERGED or incident.status in TERMINAL | {MERGED}:
        raise Conflict(N_("Only open incidents can be merged."))
    return target


def _note(action: str, reason: str, incident: Incident, table: dict, locale: str) -> str:
    """The line the reporter reads with the new status (operator text, or the department's name)."""
    if reason or action != "assign" or not incident.department:
        return reason
    names = table["departments"].get(incident.department, {})
    return names.get(tag_for(locale)) or names.get("en", "")
