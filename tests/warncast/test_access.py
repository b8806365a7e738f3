"""Every action × every role: the wrong role gets 403 and changes nothing; no identity gets 401."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import warning_body
from tests.publisher.test_workflow import act, create, published

ROLES = ("drafter", "approver", "chief", "triage", "admin")
ALLOWED = {
    "create": {"drafter", "chief"},
    "submit": {"drafter", "chief"},
    "approve": {"approver", "chief"},
    "reject": {"approver", "chief"},
    "publish": {"chief"},
    "review": {"chief"},
    "update": {"drafter", "chief"},
    "cancel": {"drafter", "chief"},
    "rules": {"admin"},
    "audit": {"chief", "admin"},
}


async def prepare(client: Any, staff: Any, clock: Any, action: str) -> tuple[str, str, dict[str, Any] | None]:
    """Set up the state the action needs; return (method, path, body)."""
    if action == "create":
        return "POST", "/api/v1/warnings", warning_body(clock, grade="blue")
    if action == "rules":
        return "PUT", "/api/v1/approval-rules", {"blue": {"approvals": 1, "chiefs": 0}}
    if action == "audit":
        return "GET", "/api/v1/audit", None
    if action in ("update", "cancel"):
        message = await published(client, staff, clock, grade="blue")
        body = {"grade": "yellow"} if action == "update" else {"reason": "over"}
        return "POST", f"/api/v1/warnings/{message['id']}/{action}", body
    if action == "review":
        message = await create(client, staff, clock, who="chief2", grade="blue")
        await act(client, staff, "chief2", message["id"], "publish", reason="emergency")
        return "POST", f"/api/v1/warnings/{message['id']}/review", {"comment": "fine"}
    message = await create(client, staff, clock, grade="blue")
    if action != "submit" and action != "publish":
        await act(client, staff, "drafter", message["id"], "submit")
    body = {"comment": "no", "reason": "now"}
    return "POST", f"/api/v1/warnings/{message['id']}/{action}", body


async def snapshot(client: Any, staff: Any) -> Any:
    warnings = await (await client.get("/api/v1/warnings", headers=staff["admin"])).json()
    audit = await (await client.get("/api/v1/audit", headers=staff["admin"])).json()
    rules = await (await client.get("/api/v1/approval-rules", headers=staff["admin"])).json()
    return warnings, audit["total"], rules


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(ALLOWED))
async def test_role_matrix(client, services, staff, clock, action, role):
    method, path, body = await prepare(client, staff, clock, action)
    before = await snapshot(client, staff)
    resp = await client.request(method, path, json=body, headers=staff[role])
    if role in ALLOWED[action]:
        assert resp.status in (200, 201), await resp.text()
    else:
        assert resp.status == 403, await resp.text()
        assert (await resp.json())["error"]["code"] == "forbidden"
        assert await snapshot(client, staff) == before


@pytest.mark.parametrize("action", sorted(ALLOWED))
async def test_anonymous_gets_401(client, services, staff, clock, action):
    method, path, body = await prepare(client, staff, clock, action)
    resp = await client.request(method, path, json=body)
    assert resp.status == 401


async def test_forged_token_is_refused(client, services):
    resp = await client.post("/api/v1/warnings?lang=en", json={}, headers={"Authorization": "Bearer wct_forged"})
    assert resp.status == 401
    assert "token" in (await resp.json())["error"]["message"]


async def test_a_valid_token_is_never_locked_out_by_guesses_from_its_address(client, services, staff):
    """Anyone behind the same NAT could otherwise block every API client there with ten guesses."""
    wrong = {"Authorization": "Bearer wct_guess"}
    statuses = [(await client.get("/api/v1/incidents", headers=wrong)).status for _ in range(11)]
    assert statuses == [401] * 10 + [429], statuses  # the guessing limit holds
    for name in ("admin", "triage"):
        resp = await client.get("/api/v1/incidents", headers=staff[name])
        assert resp.status == 200, (name, resp.status)
    assert (await client.get("/api/v1/incidents", headers=wrong)).status == 429  # and still holds after


async def test_the_bearer_scheme_is_case_insensitive(client, services, staff):
    token = staff["admin"]["Authorization"].split(" ", 1)[1]
    for scheme in ("bearer", "BEARER", "Bearer"):
        resp = await client.get("/api/v1/incidents", headers={"Authorization": f"{scheme} {token}"})
        assert resp.status == 200, scheme


async def test_another_drafters_draft_is_not_yours(client, services, staff, clock):
    message = await create(client, staff, clock)
    await act(client, staff, "drafter2", message["id"], "submit", status=403)
    resp = await client.patch(f"/api/v1/warnings/{message['id']}", json={"grade": "blue"}, headers=staff["drafter2"])
    assert resp.status == 403
