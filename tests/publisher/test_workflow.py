"""The release workflow through the real API: quorum per grade, fast path, update and cancel
chains, scheduling, expiry and drills."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Clock, Staff, warning_body


async def create(client: Any, staff: Staff, clock: Clock, who: str = "drafter", **overrides: Any) -> dict:
    resp = await client.post("/api/v1/warnings", json=warning_body(clock, **overrides), headers=staff[who])
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def act(
    client: Any, staff: Staff, who: str, message_id: str, action: str, status: int = 200, **body: Any
) -> dict:
    resp = await client.post(f"/api/v1/warnings/{message_id}/{action}", json=body, headers=staff[who])
    assert resp.status == status, await resp.text()
    return await resp.json()


async def published(client: Any, staff: Staff, clock: Clock, grade: str = "red", **overrides: Any) -> dict:
    message = await create(client, staff, clock, grade=grade, **overrides)
    await act(client, staff, "drafter", message["id"], "submit")
    if grade in ("orange", "red"):
        await act(client, staff, "approver", message["id"], "approve")
    result = await act(client, staff, "chief", message["id"], "approve")
    assert result["state"] == "published"
    return result


async def test_draft_lifecycle_states(client, services, staff, clock):
    message = await create(client, staff, clock, grade="blue")
    assert message["state"] == "draft" and message["msg_type"] == "Alert"
    assert len(message["id"]) == 31
    submitted = await act(client, staff, "drafter", message["id"], "submit")
    assert submitted["state"] == "submitted"
    done = await act(client, staff, "approver", message["id"], "approve", comment="ok")
    assert done["state"] == "published" and done["sent"]
    active = await (await client.get("/api/v1/warnings?active=true")).json()
    assert [w["id"] for w in active["warnings"]] == [message["id"]]


@pytest.mark.parametrize("grade", ["blue", "yellow"])
async def test_low_grades_need_one_approver_not_the_drafter(client, services, staff, clock, grade):
    message = await create(client, staff, clock, grade=grade)
    await act(client, staff, "drafter", message["id"], "submit")
    own = await act(client, staff, "drafter", message["id"], "approve", status=403)
    assert own["error"]["code"] == "forbidden"
    result = await act(client, staff, "approver", message["id"], "approve")
    assert result["state"] == "published"


@pytest.mark.parametrize("grade", ["orange", "red"])
async def test_high_grades_need_two_approvals_one_by_a_chief(client, services, staff, clock, grade):
    message = await create(client, staff, clock, grade=grade)
    await act(client, staff, "drafter", message["id"], "submit")
    first = await act(client, staff, "approver", message["id"], "approve")
    assert first["state"] == "submitted"
    second = await act(client, staff, "approver2", message["id"], "approve")
    assert second["state"] == "submitted", "two approvers without a chief are not enough"
    third = await act(client, staff, "chief", message["id"], "approve")
    assert third["state"] == "published"
    assert [a["user"] for a in third["approvals"]] == ["approver", "approver2", "chief"]


async def test_chief_as_drafter_does_not_count(client, services, staff, clock):
    message = await create(client, staff, clock, who="chief", grade="red")
    await act(client, staff, "chief", message["id"], "submit")
    await act(client, staff, "chief", message["id"], "approve", status=403)
    await act(client, staff, "approver", message["id"], "approve")
    result = await act(client, staff, "chief2", message["id"], "approve")
    assert result["state"] == "published"


async def test_same_approver_cannot_approve_twice(client, services, staff, clock):
    message = await create(client, staff, clock, grade="red")
    await act(client, staff, "drafter", message["id"], "submit")
    await act(client, staff, "chief", message["id"], "approve")
    again = await act(client, staff, "chief", message["id"], "approve", status=409)
    assert again["error"]["code"] == "conflict"


async def test_rules_are_data(client, services, staff, clock):
    resp = await client.put(
        "/api/v1/approval-rules", headers=staff["admin"], json={"blue": {"approvals": 2, "chiefs": 1}}
    )
    assert resp.status == 200, await resp.text()
    message = await create(client, staff, clock, grade="blue")
    await act(client, staff, "drafter", message["id"], "submit")
    assert (await act(client, staff, "approver", message["id"], "approve"))["state"] == "submitted"
    assert (await act(client, staff, "chief", message["id"], "approve"))["state"] == "published"
    # Only admins edit the rules; a bad rule names its field.
    resp = await client.put("/api/v1/approval-rules", headers=staff["chief"], json={})
    assert resp.status == 403
    resp = await client.put(
        "/api/v1/approval-rules", headers=staff["admin"], json={"red": {"approvals": 1, "chiefs": 2}}
    )
    assert resp.status == 422
    assert (await resp.json())["error"]["fields"][0]["field"] == "red.chiefs"


async def test_reject_and_resubmit(client, services, staff, clock):
    message = await create(client, staff, clock, grade="yellow")
    await act(client, staff, "drafter", message["id"], "submit")
    missing = await act(client, staff, "approver", message["id"], "reject", status=422)
    assert missing["error"]["fields"][0]["field"] == "comment"
    rejected = await act(client, staff, "approver", message["id"], "reject", comment="wrong area")
    assert rejected["state"] == "rejected" and rejected["rejection"]["comment"] == "wrong area"
    resp = await client.patch(f"/api/v1/warnings/{message['id']}", headers=staff["drafter"], json={"areas": ["990102"]})
    assert resp.status == 200, await resp.text()
    edited = await resp.json()
    assert edited["state"] == "draft" and [a["code"] for a in edited["areas"]] == ["990102"]
    await act(client, staff, "drafter", message["id"], "submit")
    assert (await act(client, staff, "approver", message["id"], "approve"))["state"] == "published"


async def test_fast_path_publishes_at_once_and_is_flagged_for_review(client, services, staff, clock):
    message = await create(client, staff, clock, who="chief", grade="red")
    no_reason = await act(client, staff, "chief", message["id"], "publish", status=422)
    assert no_reason["error"]["fields"][0]["field"] == "reason"
    await act(client, staff, "approver", message["id"], "publish", status=403)
    result = await act(client, staff, "chief", message["id"], "publish", reason="Levee breach, no time")
    assert result["state"] == "published" and result["needs_review"] is True
    assert result["fast_path"]["reason"] == "Levee breach, no time"
    await act(client, staff, "chief", message["id"], "review", status=403, comment="self review")
    reviewed = await act(client, staff, "chief2", message["id"], "review", comment="justified")
    assert reviewed["needs_review"] is False
    actions = [
        e["action"] for e in (await (await client.get("/api/v1/audit", headers=staff["admin"])).json())["entries"]
    ]
    assert "publish" in actions and "review" in actions


async def test_update_creates_new_message_referencing_the_original(client, services, staff, clock):
    original = await published(client, staff, clock, grade="orange")
    update = await act(
        client,
        staff,
        "drafter",
        original["id"],
        "update",
        status=201,
        grade="red",
        info={"en": {"headline": "Upgraded to red"}},
    )
    assert update["id"] != original["id"] and update["msg_type"] == "Update"
    assert update["state"] == "submitted" and update["grade"] == "red"
    assert update["info"]["en"]["headline"] == "Upgraded to red"
    assert update["info"]["zh-CN"] == original["info"]["zh-CN"], "untouched fields carry over"
    # The original is not edited.
    unchanged = await (await client.get(f"/api/v1/warnings/{original['id']}", headers=staff["drafter"])).json()
    assert unchanged["grade"] == "orange" and unchanged["state"] == "published"
    # Red rules apply to the update: approver alone is not enough.
    assert (await act(client, staff, "approver", update["id"], "approve"))["state"] == "submitted"
    done = await act(client, staff, "chief", update["id"], "approve")
    assert done["state"] == "published" and done["references"] == [original["id"]]
    active = (await (await client.get("/api/v1/warnings?active=true")).json())["warnings"]
    assert [w["id"] for w in active] == [update["id"]]


async def test_cancel_needs_one_approval_and_lifts_the_warning(client, services, staff, clock):
    original = await published(client, staff, clock, grade="red")
    update = await act(
        client, staff, "drafter", original["id"], "update", status=201, info={"zh-CN": {"headline": "更新"}}
    )
    await act(client, staff, "approver", update["id"], "approve")
    await act(client, staff, "chief", update["id"], "approve")
    cancel = await act(client, staff, "drafter", update["id"], "cancel", status=201, reason="Rain has stopped")
    assert cancel["msg_type"] == "Cancel" and cancel["state"] == "submitted"
    assert cancel["info"]["en"]["headline"].startswith("Lifted: ")
    done = await act(client, staff, "approver", cancel["id"], "approve")
    assert done["state"] == "published"
    assert done["references"] == [original["id"], update["id"]]
    active = (await (await client.get("/api/v1/warnings?active=true")).json())["warnings"]
    assert active == []
    again = await act(client, staff, "drafter", original["id"], "cancel", status=409)
    assert again["error"]["code"] == "conflict"


async def test_pending_update_is_withdrawn_when_warning_was_cancelled(client, services, staff, clock):
    original = await published(client, staff, clock, grade="blue")
    update = await act(client, staff, "drafter", original["id"], "update", status=201, grade="yellow")
    cancel = await act(client, staff, "drafter", original["id"], "cancel", status=201)
    await act(client, staff, "approver", cancel["id"], "approve")
    late = await act(client, staff, "approver", update["id"], "approve")
    assert late["state"] == "withdrawn"


async def test_effective_in_future_schedules_then_publishes(client, services, staff, clock):
    effective = clock.now.replace(microsecond=0)
    from datetime import timedelta

    message = await create(client, staff, clock, grade="blue", effective=(effective + timedelta(hours=1)).isoformat())
    await act(client, staff, "drafter", message["id"], "submit")
    scheduled = await act(client, staff, "approver", message["id"], "approve")
    assert scheduled["state"] == "scheduled"
    assert await services.warnings.run_due() == 0
    clock.advance(hours=1, seconds=1)
    assert await services.warnings.run_due() == 1
    result = await (await client.get(f"/api/v1/warnings/{message['id']}")).json()
    assert result["state"] == "published"


async def test_warnings_expire_by_themselves(client, services, staff, clock):
    message = await published(client, staff, clock, grade="yellow")
    clock.advance(hours=6, seconds=1)
    # Already out of the active list before the scheduler runs...
    assert (await (await client.get("/api/v1/warnings?active=true")).json())["warnings"] == []
    # ...and the expiry is recorded once.
    assert await services.warnings.run_due() == 1
    assert await services.warnings.run_due() == 0
    thread = await services.warnings.thread(message["id"])
    assert thread.status == "expired"
    await act(client, staff, "drafter", message["id"], "update", status=409, grade="red")


async def test_drill_is_marked_everywhere(client, services, staff, clock):
    message = await published(client, staff, clock, grade="red", status="Exercise")
    assert message["drill"] is True and message["status"] == "Exercise"
    cap = await (await client.get(f"/cap/{message['id']}.xml")).text()
    assert "<status>Exercise</status>" in cap and "[DRILL]" in cap and "[演练]" in cap
    page = await (await client.get(f"/warnings/{message['id']}?lang=en")).text()
    assert "DRILL" in page
    home = await (await client.get("/?lang=zh")).text()
    assert "演练" in home


async def test_public_sees_only_published_and_no_names(client, services, staff, clock):
    draft = await create(client, staff, clock, grade="blue")
    assert (await client.get(f"/api/v1/warnings/{draft['id']}")).status == 404
    assert (await client.get(f"/cap/{draft['id']}.xml")).status == 404
    message = await published(client, staff, clock, grade="red")
    public = await (await client.get(f"/api/v1/warnings/{message['id']}")).json()
    for private in ("drafter", "approvals", "fast_path", "review"):
        assert private not in public
    listing = await (await client.get("/api/v1/warnings")).json()
    assert [w["id"] for w in listing["warnings"]] == [message["id"]]
