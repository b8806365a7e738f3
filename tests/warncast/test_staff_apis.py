"""Staff machines (a department system, a 12345 hotline bridge) read through the API what staff see
on the triage board: report texts, places, photo links and contacts; the public outputs never."""

from __future__ import annotations

from aiohttp import FormData

from citizen_report.queue import drain
from tests.citizen_report.test_reports import BODY, gps_jpeg

PHONE = "+8613800138000"


async def file_report(client) -> dict:
    form = FormData()
    for name, value in {**BODY, "address": "Under the rail bridge", "contact.phone": PHONE, "consent": "true"}.items():
        form.add_field(name, str(value))
    form.add_field("photos", gps_jpeg(), filename="a.jpg", content_type="image/jpeg")
    resp = await client.post("/api/v1/reports", data=form)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def assert_staff_view(view: dict, created: dict) -> None:
    assert view["id"] == created["id"] and view["description"] == BODY["description"]
    assert view["address"] == "Under the rail bridge" and view["contact"]["phone"] == PHONE
    assert (view["lat"], view["lon"]) == (BODY["lat"], BODY["lon"])
    [photo] = view["photos"]
    assert photo.startswith("http://warncast.test/console/triage/photos/") and photo.endswith(".jpg")
    assert "tracking_code" not in view, "the reporter's secret is not staff's to pass on"


async def test_monitoring_items_and_incidents_carry_what_staff_see(client, services, staff):
    created = await file_report(client)
    items = (await (await client.get("/api/v1/monitoring/items", headers=staff["triage"])).json())["items"]
    [item] = items
    assert item["kind"] == "report" and item["ref"] == created["id"]
    assert_staff_view(item["report"], created)
    await drain(services.reports)
    [incident] = (await (await client.get("/api/v1/incidents", headers=staff["drafter"])).json())["incidents"]
    [view] = incident["report_details"]
    assert_staff_view(view, created)
    one = await (await client.get(f"/api/v1/incidents/{incident['id']}", headers=staff["admin"])).json()
    assert_staff_view(one["report_details"][0], created)
    photo = await client.get(view["photos"][0].replace("http://warncast.test", ""), headers=staff["triage"])
    assert photo.status == 200 and photo.content_type == "image/jpeg"


async def test_only_staff_roles_read_them_and_public_outputs_stay_free_of_personal_data(client, services, staff):
    created = await file_report(client)
    await drain(services.reports)
    [incident] = (await (await client.get("/api/v1/incidents", headers=staff["triage"])).json())["incidents"]
    view = incident["report_details"][0]
    for path in (
        "/api/v1/monitoring/items",
        "/api/v1/incidents",
        f"/api/v1/incidents/{incident['id']}",
        view["photos"][0],
    ):
        path = path.replace("http://warncast.test", "")
        assert (await client.get(path)).status == 401, path
        assert (await client.get(path, headers=staff["sensor"])).status == 403, path  # a machine that posts readings
    public = [
        f"/api/v1/reports/{created['tracking_code']}",
        f"/report/{created['tracking_code']}",
        f"/open311/v2/requests/{created['id']}.json",
        "/open311/v2/requests.xml",
    ]
    for path in public:
        text = await (await client.get(path)).text()
        assert "13800138000" not in text and "rail bridge" not in text and "/console/triage/photos/" not in text, path
