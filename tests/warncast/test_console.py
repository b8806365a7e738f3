"""The console over HTTP: login with sessions, CSRF on every form, pages per role."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from tests.conftest import warning_body

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def login(client: Any, name: str, password: str) -> str:
    """Log in through the form; return the session's CSRF token."""
    form = await (await client.get("/console/login")).text()
    token = CSRF.search(form).group(1)
    resp = await client.post(
        "/console/login",
        data={"username": name, "password": password, "csrf_token": token, "next": "/console"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    page = await (await client.get("/console")).text()
    return CSRF.search(page).group(1)


async def test_login_logout_and_session(client, services, users):
    assert (await client.get("/console", allow_redirects=False)).status == 303
    csrf = await login(client, "drafter", users["drafter"])
    page = await (await client.get("/console?lang=en")).text()
    assert "Compose a warning" in page
    resp = await client.post("/console/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert (await client.get("/console", allow_redirects=False)).status == 303


async def test_wrong_password_and_lockout(client, services, users):
    form = await (await client.get("/console/login")).text()
    token = CSRF.search(form).group(1)
    for _ in range(5):
        resp = await client.post("/console/login", data={"username": "chief", "password": "nope", "csrf_token": token})
        assert resp.status == 401
    resp = await client.post(
        "/console/login", data={"username": "chief", "password": users["chief"], "csrf_token": token}
    )
    assert resp.status == 429, "locked after five failures, even with the right password"


async def test_login_form_needs_its_csrf_token(client, services, users):
    await client.get("/console/login")
    resp = await client.post(
        "/console/login", data={"username": "chief", "password": users["chief"], "csrf_token": "forged"}
    )
    assert resp.status == 403


async def test_forms_need_csrf(client, services, users, clock):
    csrf = await login(client, "drafter", users["drafter"])
    body = {
        "grade": "blue",
        "event": "fog",
        "areas": "990101",
        "expires": (clock.now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
    }
    resp = await client.post("/console/compose", data={**body, "csrf_token": "wrong"})
    assert resp.status == 403
    listing = await (await client.get("/api/v1/warnings")).json()
    assert listing["warnings"] == []
    # A JSON write with the session cookie needs the header too.
    resp = await client.post("/api/v1/warnings", json=warning_body(clock))
    assert resp.status == 403
    resp = await client.post("/api/v1/warnings", json=warning_body(clock), headers={"X-CSRF-Token": csrf})
    assert resp.status == 201


async def test_compose_form_shows_field_errors_and_keeps_input(client, services, users):
    csrf = await login(client, "drafter", users["drafter"])
    resp = await client.post(
        "/console/compose?lang=en",
        data={
            "csrf_token": csrf,
            "grade": "red",
            "event": "rainstorm",
            "expires": "2001-01-01T00:00",
            "en.headline": "<b>kept</b>",
            "then": "submit",
        },
    )
    assert resp.status == 422
    page = await resp.text()
    assert "Must be in the future." in page
    assert "&lt;b&gt;kept&lt;/b&gt;" in page and "<b>kept</b>" not in page


async def test_full_flow_through_the_console(client, services, users, clock):
    csrf = await login(client, "drafter", users["drafter"])
    expires = (clock.now + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    resp = await client.post(
        "/console/compose",
        data={
            "csrf_token": csrf,
            "grade": "yellow",
            "event": "fog",
            "status": "Actual",
            "expires": expires,
            "areas": "990102",
            "zh-CN.headline": "大雾黄色预警",
            "zh-CN.description": "能见度低于200米。",
            "en.headline": "Yellow fog warning",
            "en.description": "Visibility below 200 m.",
            "then": "submit",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    detail_url = resp.headers["Location"]
    message_id = detail_url.rsplit("/", 1)[1]
    await client.post("/console/logout", data={"csrf_token": csrf})
    csrf = await login(client, "approver", users["approver"])
    page = await (await client.get(detail_url + "?lang=en")).text()
    assert 'id="approve"' in page
    resp = await client.post(f"{detail_url}/approve", data={"csrf_token": csrf, "comment": "ok"}, allow_redirects=False)
    assert resp.status == 303
    message = await (await client.get(f"/api/v1/warnings/{message_id}")).json()
    assert message["state"] == "published"
    home = await (await client.get("/?lang=en")).text()
    assert "Yellow fog warning" in home and f"/cap/{message_id}.xml" in home


async def test_console_pages_respect_roles(client, services, users):
    await login(client, "approver", users["approver"])
    assert (await client.get("/console/compose")).status == 403
    assert (await client.get("/console/audit")).status == 403
    rules = await (await client.get("/console/rules")).text()
    assert "disabled" in rules


async def test_admin_edits_rules_in_console(client, services, users):
    csrf = await login(client, "admin", users["admin"])
    data = {"csrf_token": csrf}
    for key in ("blue", "yellow", "orange", "red", "cancel"):
        data[f"{key}.approvals"], data[f"{key}.chiefs"] = "2", "1"
    data["blue.chiefs"] = "9"
    resp = await client.post("/console/rules", data=data)
    assert resp.status == 422
    data["blue.chiefs"] = "1"
    resp = await client.post("/console/rules", data=data)
    assert resp.status == 200
    rules = await services.warnings.rules.all()
    assert rules["blue"] == {"approvals": 2, "chiefs": 1, "escalate_minutes": 60}
    audit = await (await client.get("/console/audit")).text()
    assert "policy.approval_rules" in audit
