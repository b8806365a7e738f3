"""A breach drafts, pages, is approved and reaches residents: the whole chain of a threshold plan
with issuing units, the approver paged by SMS through the Twilio stand-in, and the warning sent to
the residents subscribed in the sensor's community."""

from __future__ import annotations

from typing import Any

import pytest

from citizen_report.queue import drain as drain_queue
from publisher.dispatch.notifications import Notifier
from tests.citizen_report.test_report_channels import notify_all
from tests.delivery_helpers import drain, sms_settings
from tests.publisher.test_dispatch import subscribe
from tests.standins.twilio import TwilioStandIn
from tests.warncast.test_threshold_plans import COMMUNITY, plans, reading
from tests.warncast.units_helpers import organise

PAGER = "+8613900000011"


@pytest.fixture
def settings(settings: Any, twilio: TwilioStandIn) -> Any:
    return sms_settings(settings, twilio.url)


async def test_breach_to_draft_to_paged_approver_to_approval_to_delivery(client, services, staff, twilio):
    members = await organise(client, services, staff["admin"])
    await services.accounts.create_user("jw-approver", ["chief"], "jw-approver-password", unit="jiangwan")
    await services.accounts.set_pager("jw-approver", "sms", PAGER)
    await plans(client, staff)
    residents = await subscribe(services, 3, COMMUNITY, min_grade="yellow")  # yellow SMS: for who asked

    resp = await client.post("/api/v1/monitoring/readings", json=reading(36), headers=staff["sensor"])
    assert resp.status == 202
    await drain_queue(services.reports)
    [draft] = (await (await client.get("/api/v1/warnings", headers=members["chief@centre"])).json())["warnings"]
    assert draft["state"] == "submitted" and draft["source"]["plan"] == "rain-yellow"
    message = await services.warnings.get(draft["id"])
    assert message.unit == "jiangwan", "the unit that issues rainstorm warnings for the sensor's street"

    await notify_all(services, Notifier(services.dispatch, "test-pages"))
    [page] = [m for m in twilio.messages if m.to == PAGER]
    assert "雨量站黄色" in page.body and f"/console/warnings/{draft['id']}" in page.body, "plan named, console link"

    resp = await client.post(f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=members["chief@jiangwan"])
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["state"] == "published"
    await drain(services)
    sent = {m.to: m.body for m in twilio.messages if m.to in residents}
    assert set(sent) == set(residents), "every resident of the community"
    assert all("暴雨黄色预警" in body for body in sent.values())
