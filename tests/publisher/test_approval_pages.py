"""Approvers paged, escalated: a submitted warning pages, by SMS through the Twilio stand-in, exactly
the users who may approve it (role and unit scope) and keep a pager; when nobody acts within the
grade's limit the release centre's chiefs are paged; the console shows each pending approval's age."""

from __future__ import annotations

from typing import Any

import pytest

from publisher.dispatch.notifications import Notifier
from tests.citizen_report.test_report_channels import notify_all
from tests.conftest import warning_body
from tests.delivery_helpers import sms_settings
from tests.standins.twilio import TwilioStandIn
from tests.warncast.test_console import login
from tests.warncast.units_helpers import organise

PAGERS = {  # user -> (role, unit, number)
    "ap-bj": ("approver", "binjiang", "+8613900000001"),  # the warning's own unit: paged
    "ch-centre": ("chief", "centre", "+8613900000002"),  # above it: paged, and for the escalation
    "ap-jw": ("approver", "jiangwan", "+8613900000003"),  # below it: may not approve it
    "ap-water": ("approver", "water_binjiang", "+8613900000004"),  # a sibling unit: may not either
    "dr-bj": ("drafter", "binjiang", "+8613900000005"),  # drafters do not approve
}


@pytest.fixture
def settings(settings: Any, twilio: TwilioStandIn) -> Any:
    return sms_settings(settings, twilio.url)


@pytest.fixture
async def members(client, services, staff):
    tokens = await organise(client, services, staff["admin"])
    for name, (role, unit, number) in PAGERS.items():
        await services.accounts.create_user(name, [role], f"{name}-password", unit=unit)
        await services.accounts.set_pager(name, "sms", number)
    return tokens


async def submitted(client: Any, members: Any, clock: Any, grade: str = "yellow") -> dict[str, Any]:
    body = warning_body(clock, grade=grade, areas=["990101"])
    draft = await client.post("/api/v1/warnings", json=body, headers=members["drafter@binjiang"])
    assert draft.status == 201, await draft.text()
    message = await draft.json()
    resp = await client.post(f"/api/v1/warnings/{message['id']}/submit", headers=members["drafter@binjiang"])
    assert resp.status == 200, await resp.text()
    return message


async def test_a_submitted_warning_pages_who_may_approve_it(client, services, members, clock, twilio):
    message = await submitted(client, members, clock)
    await notify_all(services, Notifier(services.dispatch, "test-pages"))
    paged = {m.to: m.body for m in twilio.messages}
    assert set(paged) == {PAGERS["ap-bj"][2], PAGERS["ch-centre"][2]}, "in scope, by role, with a pager"
    body = paged[PAGERS["ap-bj"][2]]
    assert "滨江区暴雨红色预警" in body, "the headline"
    assert "黄色" in body and "drafter.binjiang" in body, "the grade and who drafted it"
    assert f"/console/warnings/{message['id']}" in body, "a console link"

    twilio.messages.clear()
    await services.approval_pages.submitted(await services.warnings.get(message["id"]), False)  # again
    await notify_all(services, Notifier(services.dispatch, "again"))
    assert not twilio.messages, "each person is paged once per submission"


async def test_nobody_acting_in_time_pages_the_centres_chiefs(client, services, members, clock, twilio, users):
    message = await submitted(client, members, clock, grade="yellow")
    await notify_all(services, Notifier(services.dispatch, "first"))
    twilio.messages.clear()
    clock.advance(minutes=29)
    assert await services.approval_pages.escalate() == 0, "yellow waits 30 minutes before escalating"
    clock.advance(minutes=2)
    assert await services.approval_pages.escalate() == 1
    assert await services.approval_pages.escalate() == 0, "escalated once"
    await notify_all(services, Notifier(services.dispatch, "escalation"))
    assert [m.to for m in twilio.messages] == [PAGERS["ch-centre"][2]], "the release centre's chief"
    assert "31" in twilio.messages[0].body and "无人" in twilio.messages[0].body

    await login(client, "ap-bj", "ap-bj-password")
    page = await (await client.get("/console?lang=en")).text()
    assert "waiting 31 minutes" in page and "chiefs paged" in page

    approved = await client.post(f"/api/v1/warnings/{message['id']}/approve", headers=members["approver@binjiang"])
    assert approved.status == 200, await approved.text()
    assert await services.approval_pages.waiting() == [], "an approved warning waits no longer"


async def test_an_escalation_limit_is_data_an_admin_edits(client, services, staff):
    rules = await (await client.get("/api/v1/approval-rules", headers=staff["admin"])).json()
    assert rules["red"]["escalate_minutes"] == 5 and rules["orange"]["escalate_minutes"] == 10
    bad = await client.put(
        "/api/v1/approval-rules?lang=en",
        json={"red": {"approvals": 2, "chiefs": 1, "escalate_minutes": 0}},
        headers=staff["admin"],
    )
    assert bad.status == 422
    assert [f["field"] for f in (await bad.json())["error"]["fields"]] == ["red.escalate_minutes"]
    ok = await client.put(
        "/api/v1/approval-rules",
        json={"red": {"approvals": 2, "chiefs": 1, "escalate_minutes": 3}},
        headers=staff["admin"],
    )
    assert ok.status == 200, await ok.text()
    assert (await (await client.get("/api/v1/approval-rules", headers=staff["admin"])).json())["red"][
        "escalate_minutes"
    ] == 3
