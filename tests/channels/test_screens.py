"""Display screens: registry API and console, what a screen shows, LED text, heartbeats, live stream."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from channels.screens.render import encode_text, screen_text, text_width, wrap
from foundation.store import keys
from tests.channels.test_feeds import COMMUNITY_IN_990102
from tests.conftest import warning_body
from tests.publisher.test_workflow import act, published
from tests.warncast.test_console import login

COMMUNITY_IN_990101 = "990101001001"


async def add_screen(client, staff, **fields) -> dict:
    body = {"id": "station-1", "name": "Binjiang Station", "area": COMMUNITY_IN_990101, **fields}
    resp = await client.post("/api/v1/screens", json=body, headers=staff["admin"])
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_registry_api_roles_and_validation(client, services, staff):
    screen = await add_screen(client, staff, location="Exit B", languages=["zh-CN"])
    assert screen["languages"] == ["zh-CN"] and screen["encoding"] == "utf-8"
    assert (await client.post("/api/v1/screens", json={**screen}, headers=staff["admin"])).status == 409
    assert (await client.post("/api/v1/screens", json={**screen, "id": "x2"}, headers=staff["chief"])).status == 403
    assert (await client.get("/api/v1/screens")).status == 401
    bad = await client.post(
        "/api/v1/screens?lang=en",
        json={
            "id": "Bad Id",
            "name": "",
            "area": "nowhere",
            "languages": ["fr"],
            "line_width": 3,
            "encoding": "latin1",
        },
        headers=staff["admin"],
    )
    assert bad.status == 422
    fields = {f["field"] for f in (await bad.json())["error"]["fields"]}
    assert fields == {"id", "name", "area", "languages", "line_width", "encoding"}
    listed = await (await client.get("/api/v1/screens", headers=staff["drafter"])).json()
    assert [s["id"] for s in listed["screens"]] == ["station-1"] and listed["screens"][0]["status"] == "offline"
    put = await client.put(
        "/api/v1/screens/station-1", json={**screen, "name": "Renamed", "text_size": "huge"}, headers=staff["admin"]
    )
    assert put.status == 200 and (await put.json())["name"] == "Renamed"
    assert (await client.delete("/api/v1/screens/station-1", headers=staff["admin"])).status == 200
    assert (await client.get("/screens/station-1.json")).status == 404


async def test_screen_shows_warnings_covering_its_area(client, services, staff, clock):
    await add_screen(client, staff)  # a community in district 990101
    await add_screen(client, staff, id="district-2", area="990102")
    await add_screen(client, staff, id="district-3", area="990103")
    red = await published(client, staff, clock, grade="red", areas=["990101"])  # the district covers the community
    blue = await published(client, staff, clock, grade="blue", areas=[COMMUNITY_IN_990102])

    async def shown(screen_id: str) -> list[str]:
        resp = await client.get(f"/screens/{screen_id}.json")
        assert resp.status == 200 and resp.content_type == "application/json"
        return [w["id"] for w in (await resp.json())["warnings"]]

    assert await shown("station-1") == [red["id"]]
    assert await shown("district-2") == [blue["id"]]  # a district shows its communities' warnings
    assert await shown("district-3") == []
    state = await (await client.get("/screens/station-1.json")).json()
    warning = state["warnings"][0]
    assert warning["colour"] == "#d7191c" and set(warning["texts"]) == {"zh-CN", "en"}
    assert warning["texts"]["en"]["headline"] == "Red rainstorm warning"
    assert "drafter" not in json.dumps(state)
    assert set(state["labels"]["en"]) >= {"none", "todo", "areas"}


def test_wrap_counts_cjk_as_two_columns():
    assert text_width("暴雨ab") == 6
    lines = wrap("滨江区暴雨红色预警 Stop outdoor activities now", 10)
    assert all(text_width(line) <= 10 for line in lines)
    assert lines[0] == "滨江区暴雨" and "outdoor" in " ".join(lines)
    assert wrap("a\x1b[2Jb\u202ec", 10) == ["a[2Jbc"]  # no ESC or bidi override reaches a board


@pytest.mark.parametrize("encoding", ["utf-8", "gb2312", "gb18030", "ascii"])
async def test_led_text_width_and_encoding(client, services, staff, clock, encoding):
    await add_screen(client, staff, line_width=24, encoding=encoding)
    await published(client, staff, clock, grade="red", areas=["990101"])
    resp = await client.get("/screens/station-1.txt")
    charset = {"ascii": "US-ASCII"}.get(encoding, encoding)  # the IANA name (RFC 2046)
    assert resp.status == 200 and resp.headers["Content-Type"] == f"text/plain; charset={charset}"
    text = (await resp.read()).decode(encoding)
    blocks = text.rstrip("\n").split("\n\n")
    assert len(blocks) == 1  # one warning, one block
    lines = blocks[0].split("\n")
    assert all(text_width(line) == 24 for line in lines), lines
    if encoding == "ascii":
        assert "??" in text and "Red rainstorm warning" in text  # CJK replaced, width kept
    else:
        assert any(line.startswith("滨江区暴雨红色预警") for line in lines)
    assert any("Stop outdoor activities." in line for line in lines)


@pytest.mark.parametrize("encoding", ["ascii", "gb2312"])
async def test_an_english_board_shows_no_question_marks(client, services, staff, clock, encoding):
    """English times carry U+202F (narrow no-break space) before AM/PM: a board without it shows a
    space, not "?"; typographic quotes and dashes become plain ones."""
    await add_screen(client, staff, line_width=40, encoding=encoding, languages=["en"])
    info = warning_body(clock)["info"]
    info["en"]["instruction"] = "Don\u2019t drive \u2013 roads flooded."
    await published(client, staff, clock, grade="red", areas=["990101"], info=info)
    text = (await (await client.get("/screens/station-1.txt?lang=en")).read()).decode(encoding)
    assert "Red rainstorm warning" in text and "roads flooded." in text
    if encoding == "ascii":  # GB2312 has the typographic quote and dash
        assert "Don't drive - roads flooded." in text
    assert "?" not in text, text
    assert encode_text("3:00\u202fPM \uff08\u201cA\u201d\uff09", "ascii") == b'3:00 PM ( "A") '
    assert encode_text("\u2026\u4e2d", "ascii") == b".??"  # still one column, and two


async def test_led_text_blocks_and_rare_characters(client, services):
    state = {
        "warnings": [
            {
                "texts": {
                    "zh-CN": {
                        "drill": "",
                        "grade": "红",
                        "event": "暴雨",
                        "headline": "𠀀字",
                        "instruction": "",
                        "areas": "甲",
                        "until": "至",
                    }
                }
            },
            {
                "texts": {
                    "zh-CN": {
                        "drill": "演练",
                        "grade": "蓝",
                        "event": "高温",
                        "headline": "乙",
                        "instruction": "",
                        "areas": "丙",
                        "until": "至",
                    }
                }
            },
        ],
        "labels": {"zh-CN": {"none": "无"}},
    }
    text = screen_text(state, 12)
    assert text.count("\n\n") == 1
    raw = encode_text(text, "gb2312")  # 𠀀 is outside GB2312: replaced, two columns kept
    assert raw.decode("gb2312").split("\n")[1] == "??字" + " " * 8
    assert encode_text(text, "gb18030").decode("gb18030") == text


async def test_heartbeat_and_console(client, services, staff, users, clock):
    await add_screen(client, staff)
    await published(client, staff, clock, grade="red", areas=["990101"])
    await client.get("/screens/station-1.txt")
    listed = await (await client.get("/api/v1/screens", headers=staff["drafter"])).json()
    screen = listed["screens"][0]
    assert screen["status"] == "online" and screen["via"] == "txt" and len(screen["showing"]) == 1
    # A screen last seen five minutes ago is stale.
    await services.redis.hset(keys.SCREENS_SEEN, "station-1", json.dumps({"at": time.time() - 300, "via": "json"}))
    listed = await (await client.get("/api/v1/screens", headers=staff["drafter"])).json()
    assert listed["screens"][0]["status"] == "stale"

    csrf = await login(client, "admin", "admin-password")
    page = await (await client.get("/console/screens?lang=en")).text()
    assert 'data-status="stale"' in page and "Red rainstorm warning" in page
    form = {"csrf_token": csrf, "mode": "create", "id": "school-9", "name": "No. 9 School", "area": "990103"}
    resp = await client.post(
        "/console/screens", data={**form, "languages": "en", "line_width": "40"}, allow_redirects=False
    )
    assert resp.status == 303
    bad = await client.post("/console/screens?lang=en", data={**form, "id": "school-10", "area": "x"})
    assert bad.status == 422 and "Choose an area from the registry." in await bad.text()
    forged = {**form, "id": "school-11", "languages": "en", "csrf_token": "forged"}
    assert (await client.post("/console/screens", data=forged)).status == 403
    listed = await (await client.get("/api/v1/screens", headers=staff["admin"])).json()
    assert [s["id"] for s in listed["screens"]] == ["school-9", "station-1"]


async def read_event(stream, within: float = 1.0) -> dict:
    """The next `state` event's data, within `within` seconds."""
    data = []
    async with asyncio.timeout(within):
        while True:
            line = (await stream.readline()).decode().rstrip("\n")
            if line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                return json.loads("\n".join(data))


async def test_live_stream_shows_publication_and_clears_on_cancel_and_expiry(client, services, staff, clock):
    await add_screen(client, staff)
    resp = await client.get("/screens/station-1/events")
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
    assert (await read_event(resp.content))["warnings"] == []
    red = await published(client, staff, clock, grade="red", areas=["990101"])
    shown = await read_event(resp.content)  # under a second from publication
    assert [w["id"] for w in shown["warnings"]] == [red["id"]]
    other = await published(client, staff, clock, grade="blue", areas=["990103"])  # elsewhere: nothing sent
    cancel = await act(client, staff, "drafter", red["id"], "cancel", status=201)
    await act(client, staff, "approver", cancel["id"], "approve")
    assert (await read_event(resp.content))["warnings"] == []
    assert other["id"]
    again = await published(client, staff, clock, grade="yellow", areas=["990100"])
    assert [w["id"] for w in (await read_event(resp.content))["warnings"]] == [again["id"]]
    clock.advance(hours=7)
    await services.warnings.run_due()
    assert (await read_event(resp.content))["warnings"] == []
    listed = await (await client.get("/api/v1/screens", headers=staff["drafter"])).json()
    assert listed["screens"][0]["via"] == "events" and listed["screens"][0]["status"] == "online"
    resp.close()


async def test_hostile_text_in_screen_outputs(client, services, staff, clock):
    from tests.conftest import warning_body

    await add_screen(client, staff, languages=["en"])
    evil = '<script>alert(1)</script>"&'
    body = warning_body(clock, grade="blue", areas=["990101"])
    body["info"]["en"]["headline"] = evil
    message = await (await client.post("/api/v1/warnings", json=body, headers=staff["drafter"])).json()
    await act(client, staff, "drafter", message["id"], "submit")
    await act(client, staff, "approver", message["id"], "approve")
    state = await (await client.get("/screens/station-1.json")).json()
    assert state["warnings"][0]["texts"]["en"]["headline"] == evil
    page = await (await client.get("/screens/station-1")).text()
    assert "<script>alert" not in page  # the page never has warning text in its markup at all
