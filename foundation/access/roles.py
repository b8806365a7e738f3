"""Roles and what each may do: the whole access policy in one table."""

from __future__ import annotations

from collections.abc import Iterable

ROLES = ("drafter", "approver", "chief", "triage", "admin", "sensor")  # sensor: machines posting readings

# action -> roles allowed. Separation of duties: admins manage people and rules but publish nothing.
PERMISSIONS: dict[str, frozenset[str]] = {
    "warning.read": frozenset({"drafter", "approver", "chief", "triage", "admin"}),
    "warning.create": frozenset({"drafter", "chief"}),
    "warning.submit": frozenset({"drafter", "chief"}),
    "warning.approve": frozenset({"approver", "chief"}),
    "warning.reject": frozenset({"approver", "chief"}),
    "warning.fast_path": frozenset({"chief"}),
    "warning.review": frozenset({"chief"}),
    "warning.update": frozenset({"drafter", "chief"}),
    "warning.cancel": frozenset({"drafter", "chief"}),
    "audit.read": frozenset({"chief", "admin"}),
    "delivery.read": frozenset({"drafter", "approver", "chief", "admin"}),
    "delivery.replay": frozenset({"chief", "admin"}),
    "rules.edit": frozenset({"admin"}),
    "users.manage": frozenset({"admin"}),
    "screens.read": frozenset({"drafter", "approver", "chief", "triage", "admin"}),
    "screens.manage": frozenset({"admin"}),
    # Partner webhooks: staff see who receives warnings (never the secrets); admins register them.
    "partners.read": frozenset({"drafter", "approver", "chief", "triage", "admin"}),
    "partners.manage": frozenset({"admin"}),
    # Issuing units and their duty-group robots: every unit sees the organisation; admins edit it.
    "units.read": frozenset({"drafter", "approver", "chief", "triage", "admin"}),
    "units.manage": frozenset({"admin"}),
    "duty_groups.manage": frozenset({"admin"}),
    # Citizen reports and the monitoring queue.
    "report.read": frozenset({"drafter", "approver", "chief", "triage", "admin"}),
    "report.triage": frozenset({"triage", "chief"}),
    "routing.edit": frozenset({"admin"}),
    # Threshold plans and the warning templates they draft from: the office's agreed texts.
    "plans.edit": frozenset({"admin"}),
    "monitoring.ingest": frozenset({"sensor", "triage", "admin"}),
    # The city's record (/console/record): every console role that reads both warnings and reports.
    "record.read": frozenset({"drafter", "approver", "chief", "triage", "admin"}),
}


def allowed(roles: Iterable[str], action: str) -> bool:
    return bool(PERMISSIONS[action].intersection(roles))
