"""Duty groups end to end: a unit's WeCom, DingTalk and Feishu robots registered through the API,
warnings in the unit's jurisdiction posted by the real dispatch to each tool's stand-in, signatures
checked by the stand-ins, and the tools' documented error codes: rate limited (retried), bad
signature (held as an auth failure, then a dead letter), robot removed (the group is stopped)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from channels.duty_groups.tools import dingtalk_sign, feishu_sign
from citizen_report.incidents import load_incident
from citizen_report.queue import drain as consume_queue
from foundation.store import keys
from publisher.dispatch.notifications import Notifier
from tests.citizen_report.test_report_channels import notify_all
from tests.conftest import warning_body
from tests.delivery_helpers import drain
from tests.standins.dingtalk import DingTalkStandIn
from tests.standins.dingtalk import expected_sign as dingtalk_expected
from tests.standins.feishu import FeishuStandIn
from tests.standins.feishu import expected_sign as feishu_expected
from tests.standins.wecom import WeComStandIn
from tests.warncast.test_console import CSRF, login
from tests.warncast.units_helpers import organise


@pytest.fixture
async def robots():
    async with WeComStandIn() as wecom, DingTalkStandIn() as dingtalk, FeishuStandIn() as feishu:
        yield {"wecom": wecom, "dingtalk": dingtalk, "feishu": feishu}


@pytest.fixture
def settings(settings: Any, robots: Any) -> Any:
    return settings.with_(
        wecom_api_base=robots["wecom"].url,
        dingtalk_api_base=robots["dingtalk"].url,
        feishu_api_base=robots["feishu"].url,
        duty_group_interval_ms=0,
        dispatch_backoff=0.01,
        dispatch_max_attempts=3,
        provider_timeout=1.0,
    )


@pytest.fixture
async def members(client, services, staff):
    return await organise(client, services, staff["admin"])


SECRETS = {"wecom": "", "dingtalk": "SECdingtalk-test-secret", "feishu": "feishu-test-secret"}


async def register(client: Any, staff: Any, robots: Any, tool: str, gid: str, unit: str, **fields: Any) -> str:
    token = f"{gid}-token"
    robots[tool].add(token, SECRETS[tool])
    body = {"id": gid, "unit": unit, "tool": tool, "name": f"{unit} duty group", "token": token, **fields}
    if SECRETS[tool]:
        body.setdefault("secret", SECRETS[tool])
    resp = await client.post("/api/v1/duty-groups", json=body, headers=staff["admin"])
    assert resp.status == 201, await resp.text()
    shown = await resp.json()
    assert "token" not in shown and "secret" not in shown and shown["token_hint"] == f"…{token[-4:]}"
    return token


async def publish(client: Any, members: Any, clock: Any, unit: str, **overrides: Any) -> dict[str, Any]:
    body = warning_body(clock, grade="yellow", **overrides)
    draft = await (await client.post("/api/v1/warnings", json=body, headers=members[f"drafter@{unit}"])).json()
    await client.post(f"/api/v1/warnings/{draft['id']}/submit", headers=members[f"drafter@{unit}"])
    resp = await client.post(f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=members[f"approver@{unit}"])
    published = await resp.json()
    assert published["state"] == "published", published
    return published  # type: ignore[no-any-return]


async def stats(client: Any, staff: Any, message_id: str, tool: str) -> dict[str, int]:
    resp = await client.get(f"/api/v1/warnings/{message_id}/deliveries", headers=staff["chief"])
    return (await resp.json())["channels"][tool]  # type: ignore[no-any-return]


@pytest.mark.parametrize("tool", ["wecom", "dingtalk", "feishu"])
async def test_warning_reaches_the_groups_of_units_whose_jurisdiction_it_reaches(
    client, services, staff, members, clock, robots, tool
):
    inside = await register(client, staff, robots, tool, "binjiang-duty", "binjiang")
    centre = await register(client, staff, robots, tool, "centre-duty", "centre")
    high_only = await register(client, staff, robots, tool, "water-duty", "water_binjiang", min_grade="orange")
    message = await publish(client, members, clock, "jiangwan", event="rainstorm", areas=["990101001001"])
    await drain(services)
    await drain(services)  # nothing more: exactly once
    standin = robots[tool]
    assert len(standin.texts(inside)) == 1 and len(standin.texts(centre)) == 1
    assert standin.texts(high_only) == [], "below the group's grade"
    text = standin.texts(inside)[0]
    assert text.startswith("【江湾街道预警分中心】"), text  # the issuing unit, in the group's language
    assert "滨江区暴雨红色预警" in text and message["id"] in text
    row = await stats(client, staff, message["id"], tool)
    assert (row["planned"], row["delivered"], row["failed"], row["dead"]) == (2, 2, 0, 0)


async def test_a_warning_outside_the_jurisdiction_is_not_posted(client, services, staff, members, clock, robots):
    token = await register(client, staff, robots, "wecom", "binjiang-duty", "binjiang")
    await publish(client, members, clock, "centre", areas=["990102"])
    await drain(services)
    assert robots["wecom"].texts(token) == []


@pytest.mark.parametrize("tool", ["dingtalk", "feishu"])
async def test_signed_requests_and_a_wrong_secret(client, services, staff, members, clock, robots, tool):
    token = await register(client, staff, robots, tool, "signed", "binjiang")
    await publish(client, members, clock, "binjiang")
    await drain(services)
    (post,) = [p for p in robots[tool].posts if p.robot == token]
    if tool == "dingtalk":
        stamp = post.query["timestamp"]
        assert post.query["sign"] == dingtalk_expected(SECRETS[tool], stamp)
        assert dingtalk_sign(SECRETS[tool], int(stamp)) != dingtalk_sign("other", int(stamp))
    else:
        stamp = post.body["timestamp"]
        assert post.body["sign"] == feishu_expected(SECRETS[tool], stamp) == feishu_sign(SECRETS[tool], int(stamp))
    robots[tool].add(token, "the secret was rotated in the tool")  # ours no longer matches: 310000 / 19021
    second = await publish(client, members, clock, "binjiang")
    await drain(services)  # settles: an auth failure waits a minute for an operator, then retries
    [due] = [score for _, score in await services.redis.zrange(keys.DISPATCH_RETRY, 0, -1, withscores=True)]
    assert due > time.time() + 30, "held for the operator, not retried at once"
    row = await stats(client, staff, second["id"], tool)
    assert (row["delivered"], row["retrying"], row["failed"]) == (0, 1, 0)
    group = await (await client.get("/api/v1/duty-groups/signed", headers=staff["chief"])).json()
    assert group["active"] is True, "a bad signature is our configuration, not a removed robot"


@pytest.mark.parametrize("tool", ["wecom", "dingtalk", "feishu"])
async def test_rate_limited_is_retried(client, services, staff, members, clock, robots, tool):
    token = await register(client, staff, robots, tool, "busy-group", "binjiang")
    robots[tool].fail_next("rate_limited")  # 45009 / 130101 / 11232
    message = await publish(client, members, clock, "binjiang")
    await drain(services)
    assert len(robots[tool].texts(token)) == 1
    row = await stats(client, staff, message["id"], tool)
    assert (row["delivered"], row["dead"], row["failed"]) == (1, 0, 0)


@pytest.mark.parametrize("tool", ["wecom", "dingtalk", "feishu"])
async def test_robot_removed_stops_the_group(client, services, staff, members, clock, robots, tool):
    token = await register(client, staff, robots, tool, "gone", "binjiang")
    robots[tool].remove(token)  # 93000 / 300001 / 19001
    message = await publish(client, members, clock, "binjiang")
    await drain(services)
    row = await stats(client, staff, message["id"], tool)
    assert (row["delivered"], row["failed"], row["dead"]) == (0, 1, 0), "not retried"
    group = await (await client.get("/api/v1/duty-groups/gone", headers=staff["chief"])).json()
    assert group["active"] is False and "removed" in group["deactivated"]
    audit = await (await client.get("/api/v1/audit?unit=binjiang", headers=staff["admin"])).json()
    assert any(e["action"] == "duty_group.deactivate" for e in audit["entries"])
    await publish(client, members, clock, "binjiang")
    await drain(services)
    assert robots[tool].posts == [], "a stopped group gets nothing more"


async def test_a_group_without_a_key_delivers_into_the_outbox(client, services, staff, members, clock, robots, users):
    body = {"id": "no-key", "unit": "binjiang", "tool": "wecom", "name": "Binjiang duty"}
    assert (await client.post("/api/v1/duty-groups", json=body, headers=staff["admin"])).status == 201
    message = await publish(client, members, clock, "binjiang")
    await drain(services)
    outbox = await (await client.get("/api/v1/outbox/wecom", headers=staff["chief"])).json()
    assert [e["to"] for e in outbox["entries"]] == ["no-key"]
    assert message["id"] in outbox["entries"][0]["text"]
    await login(client, "admin", users["admin"])
    page = await (await client.get("/console/duty-groups?lang=en")).text()
    assert "Binjiang duty" in page and message["id"] in page and CSRF.search(page)


async def test_registration_is_validated_and_changes_nothing(client, services, staff, members):
    bad = {"id": "x", "unit": "nowhere", "tool": "wecom", "name": "", "secret": "s", "token": "has space"}
    resp = await client.post("/api/v1/duty-groups", json=bad, headers={**staff["admin"], "Accept-Language": "en"})
    assert resp.status == 422
    fields = {f["field"] for f in (await resp.json())["error"]["fields"]}
    assert fields == {"unit", "name", "secret", "token"}
    assert (await (await client.get("/api/v1/duty-groups", headers=staff["chief"])).json())["duty_groups"] == []
    resp = await client.post("/api/v1/duty-groups", json={**bad, "unit": "centre"}, headers=staff["chief"])
    assert resp.status == 403


# Pages: approvals waiting on a unit, incidents routed to one.


async def test_a_submitted_warning_pages_the_approving_units_groups(client, services, staff, members, clock, robots):
    water = await register(client, staff, robots, "wecom", "water-duty", "water_binjiang", receives=["approvals"])
    centre = await register(client, staff, robots, "feishu", "centre-duty", "centre", receives=["approvals"])
    other = await register(client, staff, robots, "dingtalk", "binjiang-duty", "binjiang")
    body = warning_body(clock, grade="orange", event="flood", areas=["990101"])
    draft = await (await client.post("/api/v1/warnings", json=body, headers=members["drafter@water_binjiang"])).json()
    await client.post(f"/api/v1/warnings/{draft['id']}/submit", headers=members["drafter@water_binjiang"])
    await notify_all(services, Notifier(services.dispatch, "test-pager"))
    (to_water,) = robots["wecom"].texts(water)
    assert to_water.startswith("【待审批】滨江区水务局") and draft["id"] in to_water, to_water
    (to_centre,) = robots["feishu"].texts(centre)  # orange: a chief of the release centre must approve
    assert "滨江区水务局" in to_centre
    assert robots["dingtalk"].texts(other) == [], "a unit the warning does not wait on"
    await notify_all(services, Notifier(services.dispatch, "again"))
    assert len(robots["wecom"].texts(water)) == 1, "paged once"


async def test_a_breach_is_routed_to_the_responsible_unit_and_pages_it(client, services, staff, members, robots):
    water = await register(client, staff, robots, "wecom", "water-duty", "water_binjiang", receives=["incidents"])
    centre = await register(client, staff, robots, "wecom", "centre-duty", "centre", receives=["incidents"])
    follower = asyncio.create_task(services.pager.follow_incidents(services.reports, block_ms=50))
    await asyncio.sleep(0.1)  # the follower reads from now on
    try:
        reading = {"sensor": "WL-3", "type": "water_level", "value": 5.4, "time": "2025-07-01T10:00:00+08:00"}
        resp = await client.post(
            "/api/v1/monitoring/readings", json={**reading, "area": "990101001"}, headers=staff["sensor"]
        )
        assert resp.status == 202, await resp.text()
        await consume_queue(services.reports)
        incident = await load_incident(services.reports, "SWL-3")
        assert incident is not None and incident.department == "water_binjiang", "flood in Binjiang: its water bureau"
        for _ in range(100):
            if await services.redis.xlen(keys.REPORT_NOTIFICATIONS):
                break
            await asyncio.sleep(0.02)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    await notify_all(services, Notifier(services.dispatch, "test-pager"))
    (page,) = robots["wecom"].texts(water)
    assert page.startswith("【滨江区水务局 收到事件】") and "SWL-3" in page, page
    assert robots["wecom"].texts(centre) == []
    board = await (await client.get("/api/v1/incidents/SWL-3", headers=staff["triage"])).json()
    assert board["department"] == "water_binjiang"


async def test_triage_departments_are_the_units(client, services, staff, members):
    table = await (await client.get("/api/v1/routing", headers=staff["triage"])).json()
    assert set(table["departments"]) == {"centre", "water_binjiang", "binjiang", "jiangwan"}
    assert table["default"] == "centre"
    bad = {**table, "rules": [{"category": "fire", "area": "", "department": "fire_rescue"}]}
    resp = await client.put("/api/v1/routing", json=bad, headers=staff["admin"])
    assert resp.status == 422, "a department must be one of the units"
