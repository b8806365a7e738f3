"""Issuing units: the registry API, authority within scope (the role x scope matrix through the API
and the console, each refusal changing nothing), sub-centre proposals, and the record by unit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from citizen_report.queue import drain as consume_queue
from foundation.store import keys
from tests.channels.test_screens import add_screen
from tests.citizen_report.test_triage import CAP
from tests.conftest import warning_body
from tests.delivery_helpers import drain
from tests.warncast.test_console import CSRF, login
from tests.warncast.units_helpers import UNITS, organise

# unit -> (an event type inside its classes, one outside or None, areas inside, outside, above or None)
SCOPES: dict[str, tuple[str, str | None, str, str | None, str | None]] = {
    "centre": ("rainstorm", None, "990101", None, None),
    "water_binjiang": ("flood", "rainstorm", "990101001", "990102", "990100"),
    "binjiang": ("hazmat", None, "990101001", "990102", "990100"),
    "jiangwan": ("waterlogging", "flood", "990101001001", "990102", "990101"),
}
PARENTS = {"binjiang": "centre", "jiangwan": "binjiang"}  # the sub-centres
CATEGORY = {"rainstorm": "Met", "flood": "Met", "waterlogging": "Met", "hazmat": "CBRNE"}
MATRIX = [
    (unit, role, event_case, area_case)
    for unit in SCOPES
    for role in ("drafter", "approver", "chief")
    for event_case in ("inside", "outside")
    for area_case in ("inside", "outside", "above")
    if (event_case == "inside" or SCOPES[unit][1])
    and (area_case == "inside" or SCOPES[unit][3 if area_case == "outside" else 4])
]


@pytest.fixture
async def members(client, services, staff):
    return await organise(client, services, staff["admin"])


def _body(clock: Any, unit: str, event_case: str, area_case: str) -> dict[str, Any]:
    inside_event, outside_event, inside_area, outside_area, above_area = SCOPES[unit]
    event = inside_event if event_case == "inside" else outside_event
    area = {"inside": inside_area, "outside": outside_area, "above": above_area}[area_case]
    return warning_body(clock, grade="blue", event=event, category=CATEGORY[event], areas=[area])


async def _record(client: Any, staff: Any) -> tuple[int, int]:
    """How many messages and audit entries exist: a refusal changes neither."""
    warnings = await (await client.get("/api/v1/warnings?limit=500", headers=staff["chief"])).json()
    audit = await (await client.get("/api/v1/audit", headers=staff["admin"])).json()
    return len(warnings["warnings"]), audit["total"]


def _expected(unit: str, role: str, event_case: str, area_case: str) -> str:
    if role == "approver":
        return "role"  # approvers never draft
    if event_case == "outside" or area_case == "outside":
        return "scope"
    if area_case == "above":
        return "proposal" if unit in PARENTS else "scope"  # only a sub-centre proposes (to its parent)
    return "own"


@pytest.mark.parametrize(("unit", "role", "event_case", "area_case"), MATRIX)
async def test_drafting_matrix_through_the_api(
    client, services, staff, members, clock, unit, role, event_case, area_case
):
    before = await _record(client, staff)
    body = _body(clock, unit, event_case, area_case)
    resp = await client.post(
        "/api/v1/warnings", json=body, headers={**members[f"{role}@{unit}"], "Accept-Language": "en"}
    )
    expected = _expected(unit, role, event_case, area_case)
    if expected in ("role", "scope"):
        assert resp.status == 403, await resp.text()
        error = (await resp.json())["error"]
        if expected == "scope":
            name = next(u["names"]["en"] for u in UNITS if u["id"] == unit)
            assert error["message"].startswith(name) and "only" in error["message"], error
        assert await _record(client, staff) == before, "a refusal changes nothing"
        return
    assert resp.status == 201, await resp.text()
    message = await resp.json()
    issuing = unit if expected == "own" else PARENTS[unit]
    assert message["issuer"]["unit"] == issuing
    assert message["issuer"]["sender"] == next(u["sender"] for u in UNITS if u["id"] == issuing)
    if expected == "proposal":
        assert message["proposed_by"] == unit


async def test_refusal_names_the_unit_in_the_users_language(client, services, staff, members, clock):
    body = _body(clock, "jiangwan", "outside", "inside")
    resp = await client.post(
        "/api/v1/warnings", json=body, headers={**members["drafter@jiangwan"], "Accept-Language": "zh-CN"}
    )
    assert resp.status == 403
    message = (await resp.json())["error"]["message"]
    assert message.startswith("江湾街道预警分中心") and "暴雨" in message and "江湾街道" in message, message


# approver's unit -> warning's unit -> allowed
APPROVALS = [
    ("centre", "jiangwan", True),
    ("centre", "water_binjiang", True),
    ("binjiang", "jiangwan", True),
    ("binjiang", "binjiang", True),
    ("binjiang", "water_binjiang", False),
    ("jiangwan", "jiangwan", True),
    ("jiangwan", "binjiang", False),
    ("water_binjiang", "binjiang", False),
    ("water_binjiang", "jiangwan", False),
]


@pytest.mark.parametrize("role", ["approver", "chief"])
@pytest.mark.parametrize(("approver_unit", "warning_unit", "allowed"), APPROVALS)
async def test_approval_matrix(client, services, staff, members, clock, role, approver_unit, warning_unit, allowed):
    body = _body(clock, warning_unit, "inside", "inside")
    draft = await (await client.post("/api/v1/warnings", json=body, headers=members[f"drafter@{warning_unit}"])).json()
    resp = await client.post(f"/api/v1/warnings/{draft['id']}/submit", headers=members[f"drafter@{warning_unit}"])
    assert resp.status == 200
    before = await _record(client, staff)
    resp = await client.post(
        f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=members[f"{role}@{approver_unit}"]
    )
    if allowed:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["state"] == "published"
        return
    assert resp.status == 403, await resp.text()
    after = await (await client.get(f"/api/v1/warnings/{draft['id']}", headers=staff["chief"])).json()
    assert after["state"] == "submitted" and after["approvals"] == []
    assert await _record(client, staff) == before
    reject = await client.post(
        f"/api/v1/warnings/{draft['id']}/reject", json={"comment": "no"}, headers=members[f"{role}@{approver_unit}"]
    )
    assert reject.status == 403


async def test_subcentre_proposal_is_approved_by_its_parent(client, services, staff, members, clock):
    body = _body(clock, "jiangwan", "inside", "above")
    draft = await (await client.post("/api/v1/warnings", json=body, headers=members["drafter@jiangwan"])).json()
    assert draft["issuer"]["unit"] == "binjiang" and draft["proposed_by"] == "jiangwan"
    assert draft["id"].startswith("990101000002"), "the identifier carries the issuing unit's area and code"
    await client.post(f"/api/v1/warnings/{draft['id']}/submit", headers=members["drafter@jiangwan"])
    own = await client.post(f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=members["approver@jiangwan"])
    assert own.status == 403, "the proposing sub-centre cannot approve its own proposal"
    parent = await client.post(f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=members["approver@binjiang"])
    assert parent.status == 200
    published = await parent.json()
    assert published["state"] == "published"
    cap = await (await client.get(f"/cap/{draft['id']}.xml")).text()
    assert "<sender>binjiang@lanjiang.example</sender>" in cap


async def test_orange_needs_a_chief_of_the_release_centre(client, services, staff, members, clock):
    body = warning_body(clock, grade="orange", event="flood", category="Met", areas=["990101"])
    draft = await (await client.post("/api/v1/warnings", json=body, headers=members["drafter@water_binjiang"])).json()
    await client.post(f"/api/v1/warnings/{draft['id']}/submit", headers=members["drafter@water_binjiang"])
    for who in ("approver@water_binjiang", "chief@water_binjiang"):
        resp = await client.post(f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=members[who])
        assert resp.status == 200
        assert (await resp.json())["state"] == "submitted", "a department's own chief is not the centre's"
    resp = await client.post(f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=members["chief@centre"])
    assert (await resp.json())["state"] == "published"


async def test_users_without_units_keep_todays_behaviour(client, services, staff, members, clock):
    """Existing users (no unit) belong to the release centre: they draft and approve everything."""
    draft = await (
        await client.post("/api/v1/warnings", json=warning_body(clock, grade="blue"), headers=staff["drafter"])
    ).json()
    assert draft["issuer"]["unit"] == "centre"
    await client.post(f"/api/v1/warnings/{draft['id']}/submit", headers=staff["drafter"])
    resp = await client.post(f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=staff["approver"])
    assert (await resp.json())["state"] == "published"


async def test_units_api_validates_and_changes_nothing_on_error(client, services, staff, members):
    bad = {**UNITS[3], "id": "new_one", "areas": ["990102"], "code": "000003", "events": ["nope"]}
    resp = await client.post("/api/v1/units", json=bad, headers={**staff["admin"], "Accept-Language": "en"})
    assert resp.status == 422
    fields = {f["field"] for f in (await resp.json())["error"]["fields"]}
    assert fields == {"events"}
    bad["events"] = ["rainstorm"]
    resp = await client.post("/api/v1/units", json=bad, headers=staff["admin"])
    fields = {f["field"] for f in (await resp.json())["error"]["fields"]}
    assert fields == {"new_one.areas", "new_one.code"}, "outside its parent's jurisdiction; code taken"
    listed = await (await client.get("/api/v1/units", headers=staff["drafter"])).json()
    assert [u["id"] for u in listed["units"]] == sorted(u["id"] for u in UNITS)
    resp = await client.post("/api/v1/units", json=UNITS[0], headers=staff["chief"])
    assert resp.status == 403
    resp = await client.delete("/api/v1/units/binjiang", headers=staff["admin"])
    assert resp.status == 409, "jiangwan is under it"


async def test_unit_warnings_and_audit_by_unit(client, services, staff, members, clock):
    ids = {}
    for unit in ("jiangwan", "water_binjiang"):
        body = _body(clock, unit, "inside", "inside")
        ids[unit] = (
            await (await client.post("/api/v1/warnings", json=body, headers=members[f"drafter@{unit}"])).json()
        )["id"]
    listed = await (await client.get("/api/v1/units/jiangwan/warnings", headers=staff["chief"])).json()
    assert [w["id"] for w in listed["warnings"]] == [ids["jiangwan"]]
    under = await (await client.get("/api/v1/units/binjiang/warnings?under=true", headers=staff["chief"])).json()
    assert [w["id"] for w in under["warnings"]] == [ids["jiangwan"]]
    public = await (await client.get("/api/v1/units/jiangwan/warnings")).json()
    assert public["warnings"] == [], "drafts are not public"
    audit = await (await client.get("/api/v1/audit?unit=water_binjiang", headers=staff["admin"])).json()
    assert audit["entries"] and all(e["details"].get("unit") == "water_binjiang" for e in audit["entries"])
    assert any(e["target"] == ids["water_binjiang"] for e in audit["entries"])


async def test_the_centre_answers_for_messages_from_before_units_and_of_deleted_units(client, services, staff, clock):
    """Messages no current unit issued are the release centre's (scope.issuing_unit): from a store
    older than the units' index, and of a unit since deleted. Its record lists them."""
    old = await (await client.post("/api/v1/warnings", json=warning_body(clock), headers=staff["drafter"])).json()
    # The store as an older version left it: the message has no unit and is in no unit's index.
    raw = json.loads(await services.redis.get(keys.warning(old["id"])))
    await services.redis.set(keys.warning(old["id"]), json.dumps({**raw, "unit": ""}))
    await services.redis.delete(keys.unit_warnings("centre"), keys.UNITS_INDEXED, keys.UNITS_BACKFILLED)
    assert await services.warnings.index_messages_from_before_units() == 1, "as at the next start"
    assert await services.warnings.index_messages_from_before_units() == 0, "once per store"
    members = await organise(client, services, staff["admin"])
    body = _body(clock, "jiangwan", "inside", "inside")
    gone = await (await client.post("/api/v1/warnings", json=body, headers=members["drafter@jiangwan"])).json()

    async def centre() -> list[str]:
        listed = await client.get("/api/v1/units/centre/warnings", headers=staff["chief"])
        return [w["id"] for w in (await listed.json())["warnings"]]

    assert await centre() == [old["id"]]
    assert (await client.delete("/api/v1/units/jiangwan", headers=staff["admin"])).status == 200
    assert sorted(await centre()) == sorted([old["id"], gone["id"]]), "the deleted unit's warning is the centre's"


async def test_console_drafting_refused_outside_scope_changes_nothing(client, services, staff, members, clock):
    await services.accounts.create_user("jw.drafter", ["drafter"], "jw-drafter-password", unit="jiangwan")
    csrf = await login(client, "jw.drafter", "jw-drafter-password")
    before = await _record(client, staff)
    body = _body(clock, "jiangwan", "inside", "outside")
    form = {
        "csrf_token": csrf,
        "grade": body["grade"],
        "event": body["event"],
        "status": "Actual",
        "expires": body["expires"][:16],
        "areas": body["areas"][0],
        **{f"{tag}.{part}": text for tag, texts in body["info"].items() for part, text in texts.items()},
    }
    resp = await client.post("/console/compose?lang=en", data=form, allow_redirects=False)
    assert resp.status == 403
    assert "Jiangwan Warning Sub-centre" in await resp.text()
    assert await _record(client, staff) == before
    page = await (await client.get("/console/units?lang=en")).text()
    assert "Binjiang Water Affairs Bureau" in page and CSRF.search(page)


async def test_console_lists_own_units_warnings_first(client, services, staff, members, clock):
    body = _body(clock, "jiangwan", "inside", "inside")
    own = (await (await client.post("/api/v1/warnings", json=body, headers=members["drafter@jiangwan"])).json())["id"]
    body = _body(clock, "water_binjiang", "inside", "inside")
    other = (
        await (await client.post("/api/v1/warnings", json=body, headers=members["drafter@water_binjiang"])).json()
    )["id"]
    await services.accounts.create_user("jw.approver", ["approver"], "jw-approver-password", unit="jiangwan")
    await login(client, "jw.approver", "jw-approver-password")
    page = await (await client.get("/console")).text()
    assert own in page and other in page, "every unit sees everything"
    assert page.index(own) < page.index(other), "its own unit's first, though older"


async def test_delivery_statistics_and_the_console_by_unit(client, services, staff, members, clock, users):
    body = {**_body(clock, "jiangwan", "inside", "inside"), "grade": "yellow"}
    draft = await (await client.post("/api/v1/warnings", json=body, headers=members["drafter@jiangwan"])).json()
    await client.post(f"/api/v1/warnings/{draft['id']}/submit", headers=members["drafter@jiangwan"])
    await client.post(f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=members["approver@jiangwan"])
    await services.subscribers.subscribe("telegram", "555", "990101001001", lang="zh-CN")
    await drain(services)
    own = await (await client.get("/api/v1/units/jiangwan/deliveries", headers=staff["chief"])).json()
    assert [w["id"] for w in own["warnings"]] == [draft["id"]]
    under = await (await client.get("/api/v1/units/binjiang/deliveries?under=true", headers=staff["chief"])).json()
    assert own["totals"]["telegram"]["delivered"] == 1  # the outbox: no bot token in tests
    assert under["totals"] == own["totals"]
    other = await (await client.get("/api/v1/units/water_binjiang/deliveries", headers=staff["chief"])).json()
    assert other["warnings"] == [] and other["totals"] == {}
    await login(client, "admin", users["admin"])
    page = await (await client.get("/console/delivery?unit=binjiang&lang=en")).text()
    assert "unit-deliveries" in page
    audit = await (await client.get("/console/audit?unit=jiangwan&lang=en")).text()
    assert draft["id"] in audit
    other_audit = await (await client.get("/console/audit?unit=water_binjiang&lang=en")).text()
    assert draft["id"] not in other_audit


def _compose_form(csrf: str, body: dict[str, Any]) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "grade": body["grade"],
        "event": body["event"],
        "status": "Actual",
        "expires": body["expires"][:16],
        "areas": body["areas"][0],
        **{f"{tag}.{part}": text for tag, texts in body["info"].items() for part, text in texts.items()},
    }


@pytest.mark.parametrize(("unit", "role", "event_case", "area_case"), [m for m in MATRIX if m[1] != "approver"])
async def test_drafting_matrix_through_the_console(
    client, services, staff, members, clock, unit, role, event_case, area_case
):
    name = f"{role}.{unit.replace('_', '-')}"
    await services.accounts.create_user(name, [role], f"{name}-password", unit=unit)
    csrf = await login(client, name, f"{name}-password")
    before = await _record(client, staff)
    form = _compose_form(csrf, _body(clock, unit, event_case, area_case))
    resp = await client.post("/console/compose?lang=en", data=form, allow_redirects=False)
    expected = _expected(unit, role, event_case, area_case)
    if expected == "scope":
        assert resp.status == 403
        assert next(u["names"]["en"] for u in UNITS if u["id"] == unit) in await resp.text()
        assert await _record(client, staff) == before, "a refusal changes nothing"
        return
    assert resp.status == 303, await resp.text()
    message_id = resp.headers["Location"].rsplit("/", 1)[1]
    message = await (await client.get(f"/api/v1/warnings/{message_id}", headers=staff["chief"])).json()
    assert message["issuer"]["unit"] == (unit if expected == "own" else PARENTS[unit])


@pytest.mark.parametrize(("approver_unit", "warning_unit", "allowed"), APPROVALS)
async def test_approval_matrix_through_the_console(
    client, services, staff, members, clock, approver_unit, warning_unit, allowed
):
    body = _body(clock, warning_unit, "inside", "inside")
    draft = await (await client.post("/api/v1/warnings", json=body, headers=members[f"drafter@{warning_unit}"])).json()
    await client.post(f"/api/v1/warnings/{draft['id']}/submit", headers=members[f"drafter@{warning_unit}"])
    name = f"approver.{approver_unit.replace('_', '-')}"
    await services.accounts.create_user(name, ["approver"], f"{name}-password", unit=approver_unit)
    csrf = await login(client, name, f"{name}-password")
    page = await (await client.get(f"/console/warnings/{draft['id']}?lang=en")).text()
    assert ('id="approve"' in page) == allowed, "the page offers approval only where the workflow allows it"
    assert ("outside yours" in page) != allowed
    before = await _record(client, staff)
    resp = await client.post(
        f"/console/warnings/{draft['id']}/approve?lang=en", data={"csrf_token": csrf}, allow_redirects=False
    )
    after = await (await client.get(f"/api/v1/warnings/{draft['id']}", headers=staff["chief"])).json()
    if allowed:
        assert resp.status == 303 and after["state"] == "published"
        return
    assert resp.status == 403
    assert next(u["names"]["en"] for u in UNITS if u["id"] == approver_unit) in await resp.text()
    assert after["state"] == "submitted" and after["approvals"] == []
    assert await _record(client, staff) == before


async def test_edits_keep_the_issuing_units_scope(client, services, staff, members, clock):
    body = _body(clock, "water_binjiang", "inside", "inside")
    draft = await (await client.post("/api/v1/warnings", json=body, headers=members["drafter@water_binjiang"])).json()
    url = f"/api/v1/warnings/{draft['id']}"
    resp = await client.patch(url, json={"event": "rainstorm"}, headers=members["drafter@water_binjiang"])
    assert resp.status == 403, "outside the bureau's event types"
    resp = await client.patch(url, json={"areas": ["990101002"]}, headers=members["chief@centre"])
    assert resp.status == 200, "a chief of the centre may edit a department's draft; it stays the department's"
    assert (await resp.json())["issuer"]["unit"] == "water_binjiang"
    resp = await client.patch(url, json={"areas": ["990101002"]}, headers=members["chief@jiangwan"])
    assert resp.status == 403, "not a unit above it"


async def test_console_unit_form_shows_tree_errors(client, services, staff, members, users):
    await login(client, "admin", users["admin"])
    page = await (await client.get("/console/units")).text()
    form = {
        "csrf_token": CSRF.search(page).group(1),
        "mode": "create",
        "id": "stray",
        "names.zh-CN": "外区分中心",
        "names.en": "Stray sub-centre",
        "kind": "subcentre",
        "parent": "jiangwan",
        "areas": "990102",
        "sender": "stray@lanjiang.example",
        "code": "000009",
    }
    resp = await client.post("/console/units?lang=en", data=form)
    assert resp.status == 422
    assert "A unit&#39;s jurisdiction lies inside its parent&#39;s." in await resp.text()
    listed = await (await client.get("/api/v1/units", headers=staff["admin"])).json()
    assert "stray" not in {u["id"] for u in listed["units"]}


@pytest.mark.parametrize(
    ("event_code", "expected"),
    [
        ("", "binjiang"),
        ("<eventCode><valueName>warncast:event</valueName><value>flood</value></eventCode>", "water_binjiang"),
    ],
)
async def test_upstream_cap_alert_goes_to_the_responsible_unit(client, services, staff, members, event_code, expected):
    """A rainstorm for the whole of Binjiang: no unit issues rainstorms there (Jiangwan's street is
    smaller), so the district's centre; a flood: the district's water bureau."""
    body = CAP.replace("<urgency>", f"{event_code}<urgency>")
    headers = {**staff["sensor"], "Content-Type": "application/cap+xml"}
    resp = await client.post("/api/v1/monitoring/alerts", data=body.encode(), headers=headers)
    assert resp.status == 202, await resp.text()
    await consume_queue(services.reports)
    found = await (await client.get("/api/v1/incidents?kind=alert", headers=staff["triage"])).json()
    assert [i["department"] for i in found["incidents"]] == [expected]


async def test_every_output_names_the_issuing_unit(client, services, staff, members, clock):
    await add_screen(client, staff, id="jiangwan-1", area="990101001001")
    body = {**_body(clock, "jiangwan", "inside", "inside"), "grade": "yellow"}
    draft = await (await client.post("/api/v1/warnings", json=body, headers=members["drafter@jiangwan"])).json()
    await client.post(f"/api/v1/warnings/{draft['id']}/submit", headers=members["drafter@jiangwan"])
    await client.post(f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=members["approver@jiangwan"])
    page = await (await client.get(f"/warnings/{draft['id']}?lang=en")).text()
    assert "Issued by Jiangwan Warning Sub-centre" in page
    feed = await (await client.get("/feeds/warnings.atom?lang=zh-CN")).text()
    assert "<name>江湾街道预警分中心</name>" in feed
    cap_index = await (await client.get("/feeds/cap.atom")).text()
    assert "jiangwan@lanjiang.example" in cap_index
    screen = await (await client.get("/screens/jiangwan-1.json")).json()
    assert screen["warnings"][0]["texts"]["zh-CN"]["issuer"] == "江湾街道预警分中心"
    await services.subscribers.subscribe("telegram", "556", "990101001001", lang="zh-CN")
    await drain(services)
    outbox = await (await client.get("/api/v1/outbox/telegram", headers=staff["chief"])).json()
    assert "发布单位：江湾街道预警分中心" in outbox["entries"][0]["text"]
    preview = await (await client.get(f"/api/v1/warnings/{draft['id']}/preview", headers=staff["chief"])).json()
    assert "【江湾街道预警分中心】" in str(preview)


async def test_a_drawn_circle_must_lie_inside_the_jurisdiction_not_only_its_centre(client, services, members, clock):
    street = services.registry.get("990101001")
    lat, lon = street.point
    body = {**_body(clock, "jiangwan", "inside", "inside"), "areas": []}
    small = {**body, "circles": [{"lat": lat, "lon": lon, "radius_km": 0.05}]}
    resp = await client.post("/api/v1/warnings", json=small, headers=members["drafter@jiangwan"])
    assert resp.status == 201, await resp.text()
    # The same centre, a rim that reaches past the street office's jurisdiction: refused.
    wide = {**body, "circles": [{"lat": lat, "lon": lon, "radius_km": 15}]}
    resp = await client.post("/api/v1/warnings?lang=en", json=wide, headers=members["drafter@jiangwan"])
    assert resp.status == 403, await resp.text()
    assert "Jiangwan Warning Sub-centre" in (await resp.json())["error"]["message"]
