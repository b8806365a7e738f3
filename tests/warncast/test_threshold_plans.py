"""Threshold plans (预案): a breach matching a plan drafts its warning from a template and submits it
at once, linked to the sensor's incident; one draft per plan per sensor episode; a rise from yellow
to red updates the yellow warning in force; the return to green offers the cancellation; a breach
redelivered after a crash drafts nothing twice; the tables are validated and audited."""

from __future__ import annotations

from typing import Any

from citizen_report.queue import drain
from foundation.store import keys
from tests.publisher.test_workflow import act
from warncast.demo import DEMO_PLANS
from warncast.threshold_plans import load_episode

SENSOR = "RG-7"
COMMUNITY = "990101001"  # in Binjiang district


def reading(value: float, sensor: str = SENSOR, **extra: Any) -> dict[str, Any]:
    return {
        "sensor": sensor,
        "type": "rainfall_1h",
        "value": value,
        "time": "2026-07-01T10:05:00+08:00",
        "area": COMMUNITY,
        **extra,
    }


async def plans(client: Any, staff: Any, body: list[dict[str, Any]] = DEMO_PLANS, status: int = 200) -> Any:
    resp = await client.put("/api/v1/plans?lang=en", json={"plans": body}, headers=staff["admin"])
    assert resp.status == status, await resp.text()
    return await resp.json()


async def read(client: Any, staff: Any, services: Any, *values: float, sensor: str = SENSOR) -> None:
    for value in values:
        resp = await client.post("/api/v1/monitoring/readings", json=reading(value, sensor), headers=staff["sensor"])
        assert resp.status == 202, await resp.text()
    await drain(services.reports)


async def warnings(client: Any, staff: Any) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/warnings?limit=100", headers=staff["chief"])
    assert resp.status == 200
    return sorted((await resp.json())["warnings"], key=lambda w: (w["created"], int(w["id"].rsplit("_", 1)[1])))


async def incident(client: Any, staff: Any, sensor: str = SENSOR) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/incidents/S{sensor}?lang=en", headers=staff["triage"])
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_breach_drafts_its_plans_warning_and_submits_it_linked_to_the_incident(client, services, staff):
    await plans(client, staff)
    await read(client, staff, services, 12, 35)  # green, then yellow (30 mm is the yellow line)
    [draft] = await warnings(client, staff)
    assert draft["state"] == "submitted" and draft["msg_type"] == "Alert", "submitted for approval at once"
    assert (draft["grade"], draft["event"]) == ("yellow", "rainstorm")
    assert draft["drafter"] == "plan:rain-yellow"
    assert draft["source"]["incident"] == f"S{SENSOR}" and draft["source"]["plan"] == "rain-yellow"
    assert [a["code"] for a in draft["areas"]] == [COMMUNITY], "the sensor's own area"
    whole = await (await client.get(f"/api/v1/warnings/{draft['id']}", headers=staff["chief"])).json()
    community = services.registry.get(COMMUNITY)
    assert whole["info"]["zh-CN"]["headline"] == f"{community.name_in('zh-CN')}暴雨黄色预警"
    assert "35 mm" in whole["info"]["en"]["description"] and "10:05" in whole["info"]["en"]["description"]
    assert "Hourly rainfall" in whole["info"]["en"]["description"], "the reading type's name"
    assert "小时雨量达35mm" in whole["info"]["zh-CN"]["description"]
    linked = (await incident(client, staff))["plans"]
    assert [w["id"] for w in linked["warnings"]] == [draft["id"]], "the incident links its warning"
    assert linked["cancellation_offered"] == []


async def test_one_draft_per_plan_in_an_episode_and_a_new_episode_after_green(client, services, staff):
    await plans(client, staff)
    await read(client, staff, services, 35, 40)  # yellow, still yellow: no new item
    await read(client, staff, services, 60)  # red: the red plan (the yellow one is not published yet)
    await read(client, staff, services, 45, 70)  # back to yellow (below the peak), red again
    drafted = await warnings(client, staff)
    assert [(w["grade"], w["source"]["plan"]) for w in drafted] == [("yellow", "rain-yellow"), ("red", "rain-red")]
    await read(client, staff, services, 5, 36)  # green ends the episode; yellow begins a new one
    drafted = await warnings(client, staff)
    assert [w["grade"] for w in drafted] == ["yellow", "red", "yellow"]
    assert drafted[0]["source"]["key"] != drafted[2]["source"]["key"]


async def test_a_sensor_jumping_to_red_drafts_the_red_warning_only(client, services, staff):
    await plans(client, staff)
    await read(client, staff, services, 80)
    assert [w["source"]["plan"] for w in await warnings(client, staff)] == ["rain-red"]


async def test_rising_to_red_updates_the_yellow_warning_in_force(client, services, staff):
    await plans(client, staff)
    await read(client, staff, services, 35)
    [yellow] = await warnings(client, staff)
    assert (await act(client, staff, "chief", yellow["id"], "approve"))["state"] == "published"
    await read(client, staff, services, 60)
    [_, raised] = await warnings(client, staff)
    assert raised["msg_type"] == "Update" and raised["grade"] == "red" and raised["state"] == "submitted"
    assert raised["thread"] == yellow["thread"], "the same warning raised, not a second one"
    await act(client, staff, "approver", raised["id"], "approve")
    published = await act(client, staff, "chief", raised["id"], "approve")
    assert published["state"] == "published" and published["references"] == [yellow["id"]]


async def test_the_return_to_green_offers_the_cancellation_of_what_was_published(client, services, staff):
    await plans(client, staff)
    await read(client, staff, services, 35)
    [yellow] = await warnings(client, staff)
    await act(client, staff, "chief", yellow["id"], "approve")
    assert (await incident(client, staff))["plans"]["cancellation_offered"] == []
    await read(client, staff, services, 3)
    offered = (await incident(client, staff))["plans"]
    assert offered["ended"] and [w["id"] for w in offered["cancellation_offered"]] == [yellow["id"]]
    assert [w["id"] for w in await warnings(client, staff)] == [yellow["id"]], (
        "offered, not cancelled: a person decides"
    )
    cancel = await client.post(f"/api/v1/warnings/{yellow['id']}/cancel", json={}, headers=staff["drafter"])
    assert cancel.status == 201, await cancel.text()
    await act(client, staff, "chief", (await cancel.json())["id"], "approve")
    assert (await incident(client, staff))["plans"]["cancellation_offered"] == []


async def test_a_breach_redelivered_after_a_crash_drafts_nothing_twice(client, services, staff):
    await plans(client, staff)
    resp = await client.post("/api/v1/monitoring/readings", json=reading(35), headers=staff["sensor"])
    assert resp.status == 202
    [(entry_id, fields)] = [
        (e.decode() if isinstance(e, bytes) else e, {k: v for k, v in f.items()})
        for e, f in await services.redis.xrange(keys.MONITORING_QUEUE)
    ]
    [on_breach] = services.reports.on_breach
    await on_breach(entry_id, fields)
    # The process died after drafting, before the episode recorded the draft: the item comes again.
    await services.redis.delete(keys.sensor_episode(SENSOR))
    await drain(services.reports)
    [draft] = await warnings(client, staff)
    assert draft["state"] == "submitted"
    episode = await load_episode(services.redis, SENSOR)
    assert episode is not None and episode.drafts == {"rain-yellow": draft["id"]}


async def test_a_plan_that_cannot_draft_says_why_on_the_incident_and_holds_nothing_up(client, services, staff):
    await plans(client, staff)
    resp = await client.post(
        "/api/v1/monitoring/readings", json={**reading(35), "area": ""}, headers=staff["sensor"]
    )  # a sensor with no area, and a plan that names none
    assert resp.status == 202
    await drain(services.reports)
    assert await warnings(client, staff) == []
    [problem] = (await incident(client, staff))["plans"]["problems"]
    assert problem["plan"] == "rain-yellow" and "no area" in problem["reason"]
    zh = await (await client.get(f"/api/v1/incidents/S{SENSOR}?lang=zh-CN", headers=staff["triage"])).json()
    assert "区域" in zh["plans"]["problems"][0]["reason"], "in the reader's language"
    await read(client, staff, services, 60, sensor="RG-8")  # the queue goes on
    assert [w["grade"] for w in await warnings(client, staff)] == ["red"]


async def test_plans_are_validated_whole_and_audited(client, services, staff):
    await plans(client, staff)
    bad = [
        {**DEMO_PLANS[0], "reading": "magic"},
        {**DEMO_PLANS[1], "template": "nope", "areas": ["000000"], "sensors": ["has space"]},
        {**DEMO_PLANS[2], "colour": "green"},
    ]
    answer = await plans(client, staff, bad, status=422)
    assert {f["field"] for f in answer["error"]["fields"]} == {
        "plans[0].reading",
        "plans[1].template",
        "plans[1].areas",
        "plans[1].sensors",
        "plans[2].colour",
    }
    kept = await (await client.get("/api/v1/plans", headers=staff["triage"])).json()
    assert [p["id"] for p in kept["plans"]] == [p["id"] for p in DEMO_PLANS], "nothing changed"
    denied = await client.put("/api/v1/plans", json={"plans": []}, headers=staff["drafter"])
    assert denied.status == 403
    log = await (await client.get("/api/v1/audit?limit=50", headers=staff["admin"])).json()
    assert any(e["action"] == "policy.plans" for e in log["entries"])


async def test_templates_are_validated_and_one_in_use_cannot_be_removed(client, services, staff):
    await plans(client, staff)
    resp = await client.get("/api/v1/warning-templates", headers=staff["drafter"])
    templates = (await resp.json())["templates"]
    broken = [
        {**templates[0], "info": {**templates[0]["info"], "en": {"headline": "{place.__class__}", "description": "x"}}}
    ]
    resp = await client.put("/api/v1/warning-templates?lang=en", json={"templates": broken}, headers=staff["admin"])
    assert resp.status == 422
    [error] = (await resp.json())["error"]["fields"]
    assert error["field"] == "templates[0].info.en.headline" and "{place}" in error["message"]
    kept = [t for t in templates if t["id"] != "rainstorm-red"]
    resp = await client.put("/api/v1/warning-templates?lang=en", json={"templates": kept}, headers=staff["admin"])
    assert resp.status == 409 and "rain-red" in (await resp.json())["error"]["message"]
    renamed = [
        {**t, "name": {"zh-CN": "新名字", "en": "New name"}} if t["id"] == "rainstorm-red" else t for t in templates
    ]
    resp = await client.put("/api/v1/warning-templates", json={"templates": renamed}, headers=staff["admin"])
    assert resp.status == 200
    again = await (await client.get("/api/v1/warning-templates", headers=staff["drafter"])).json()
    assert next(t for t in again["templates"] if t["id"] == "rainstorm-red")["name"]["en"] == "New name"
