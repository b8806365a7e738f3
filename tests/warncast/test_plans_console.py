"""The threshold plans in the console: the plans and templates editors (saved through the API's own
rules, a refusal shown at its field and changing nothing), "start from a template" on the compose
page (its blanks must be filled before the warning saves), and a plan's draft on its warning page
and on the triage board (the reading behind it, the offer to lift it once the sensor is green)."""

from __future__ import annotations

import re
from typing import Any

from tests.publisher.test_workflow import act
from tests.warncast.test_console import login
from tests.warncast.test_threshold_plans import COMMUNITY, SENSOR, plans, read, warnings
from warncast.demo import DEMO_PLANS


def plan_row(index: int, plan: dict[str, Any], **changes: str) -> dict[str, str]:
    fields = {
        "id": plan["id"],
        "name.zh-CN": plan["name"]["zh-CN"],
        "name.en": plan["name"]["en"],
        "reading": plan["reading"],
        "colour": plan["colour"],
        "template": plan["template"],
        "areas": " ".join(plan.get("areas", [])),
        "sensors": " ".join(plan.get("sensors", [])),
        "warn_areas": " ".join(plan.get("warn_areas", [])),
    } | changes
    return {f"{index}.{name}": value for name, value in fields.items()}


async def saved_plans(client: Any, staff: Any) -> list[dict[str, Any]]:
    return (await (await client.get("/api/v1/plans", headers=staff["triage"])).json())["plans"]


async def test_an_admin_adds_changes_and_deletes_plans_in_the_console(client, services, staff, users):
    csrf = await login(client, "admin", users["admin"])
    page = await (await client.get("/console/plans?lang=en")).text()
    assert page.count('name="row"') == 2, "two empty rows to add plans"
    new = {**DEMO_PLANS[0], "areas": ["990101"], "sensors": ["RG-*"]}
    form = [("csrf_token", csrf), ("row", "0"), ("row", "1"), ("enabled", "0"), *plan_row(0, new).items()]
    resp = await client.post("/console/plans?lang=en", data=form)
    assert resp.status == 200 and "Saved." in await resp.text()
    [stored] = await saved_plans(client, staff)
    assert (stored["id"], stored["areas"], stored["sensors"], stored["enabled"]) == (
        "rain-yellow",
        ["990101"],
        ["RG-*"],
        True,
    )
    # Two rows: the first switched off with its areas typed with Chinese commas, the second refused.
    rows = [("csrf_token", csrf), ("row", "0"), ("row", "1"), ("row", "2")]  # and an empty row 2
    rows += plan_row(0, new, areas="990101，990102").items()
    rows += plan_row(1, DEMO_PLANS[1], warn_areas="990101 000000").items()
    resp = await client.post("/console/plans?lang=en", data=rows)
    text = await resp.text()
    assert resp.status == 422 and "Nothing was saved" in text
    assert "Unknown area code: 000000." in text
    assert 'name="1.warn_areas" value="990101 000000"' in text, "what was typed is shown again"
    assert text.count('name="row"') == 2 + 2, "the typed rows and two empty ones, not one more each time"
    assert await saved_plans(client, staff) == [stored], "a refusal changes nothing"
    rows = [r for r in rows if r[0] != "1.warn_areas"] + [("1.warn_areas", "")]
    resp = await client.post("/console/plans?lang=en", data=rows)
    assert resp.status == 200, await resp.text()
    first, second = await saved_plans(client, staff)
    assert first["areas"] == ["990101", "990102"] and first["enabled"] is False
    assert second["id"] == "rain-red" and second["enabled"] is False
    rows = [("csrf_token", csrf), ("row", "0"), ("row", "1"), ("delete", "0"), ("enabled", "1")]
    rows += [*plan_row(0, first).items(), *plan_row(1, second).items()]
    assert (await client.post("/console/plans?lang=en", data=rows)).status == 200
    assert [(p["id"], p["enabled"]) for p in await saved_plans(client, staff)] == [("rain-red", True)]
    log = await (await client.get("/api/v1/audit?limit=50", headers=staff["admin"])).json()
    assert sum(e["action"] == "policy.plans" for e in log["entries"]) == 3


async def test_staff_read_the_plans_but_only_an_admin_saves_them(client, services, staff, users):
    await plans(client, staff)
    csrf = await login(client, "triage", users["triage"])
    page = await (await client.get("/console/plans?lang=en")).text()
    assert "Rain gauge, red" in page and "Save all plans" not in page
    assert 'id="plan-rain-red" disabled>' in page, "read-only for who may not save"
    resp = await client.post("/console/plans", data={"csrf_token": csrf, "row": "0", "delete": "0"})
    assert resp.status == 403
    assert len(await saved_plans(client, staff)) == len(DEMO_PLANS)


def template_card(index: int, template: dict[str, Any], **changes: str) -> dict[str, str]:
    fields: dict[str, str] = {
        "id": template["id"],
        "grade": template["grade"],
        "event": template["event"],
        "expires_hours": str(template["expires_hours"]),
    }
    for tag, name in template["name"].items():
        fields[f"name.{tag}"] = name
    for tag, texts in template["info"].items():
        fields |= {f"info.{tag}.{part}": text for part, text in texts.items()}
    return {f"{index}.{name}": value for name, value in (fields | changes).items()}


async def test_templates_are_edited_in_the_console_with_the_apis_rules(client, services, staff, users):
    await plans(client, staff)
    stored = (await (await client.get("/api/v1/warning-templates", headers=staff["drafter"])).json())["templates"]
    csrf = await login(client, "admin", users["admin"])
    page = await (await client.get("/console/templates?lang=en")).text()
    assert page.count('name="row"') == len(stored) + 1, "a card per template and one to add"
    rows = [(n, str(i)) for i, _ in enumerate(stored) for n in ["row"]]
    cards = [item for i, t in enumerate(stored) for item in template_card(i, t).items()]
    headline = "0.info.en.headline"
    typed = [(k, "Rain {where}" if k == headline else v) for k, v in cards]
    resp = await client.post("/console/templates?lang=en", data=[("csrf_token", csrf), *rows, *typed])
    text = await resp.text()
    assert resp.status == 422 and "Unknown placeholder {where}" in text
    assert 'value="Rain {where}"' in text
    changed = [(k, "Rain at {place}: {value} {unit}" if k == headline else v) for k, v in cards]
    resp = await client.post("/console/templates?lang=en", data=[("csrf_token", csrf), *rows, *changed])
    assert resp.status == 200, await resp.text()
    after = (await (await client.get("/api/v1/warning-templates", headers=staff["drafter"])).json())["templates"]
    assert after[0]["info"]["en"]["headline"] == "Rain at {place}: {value} {unit}"
    in_use = next(i for i, t in enumerate(stored) if t["id"] == "rainstorm-red")
    resp = await client.post(
        "/console/templates?lang=en", data=[("csrf_token", csrf), *rows, ("delete", str(in_use)), *changed]
    )
    text = await resp.text()
    assert resp.status == 409 and "change the plan before removing the template" in text
    assert f'name="delete" value="{in_use}" checked' in text, "the tick is kept while nothing is saved"
    assert text.count('name="row"') == len(stored) + 1
    assert len(
        (await (await client.get("/api/v1/warning-templates", headers=staff["drafter"])).json())["templates"]
    ) == len(stored)


async def test_a_drafter_starts_a_warning_from_a_template_and_must_fill_its_blanks(client, services, staff, users):
    csrf = await login(client, "drafter", users["drafter"])
    page = await (await client.get(f"/console/compose?template=rainstorm-red&area={COMMUNITY}&lang=en")).text()
    assert '<option value="red" selected' in page
    headline = re.search(r'name="en\.headline"[^>]*value="([^"]*)"', page)[1]
    assert "{place}" in headline, "the blanks are kept for the drafter"
    form = {
        k: v
        for k, v in re.findall(r'name="([a-zA-Z.-]+\.(?:headline|description|instruction))"[^>]*value="([^"]*)"', page)
    }
    for tag_part in ("zh-CN.description", "en.description", "zh-CN.instruction", "en.instruction"):
        textarea = re.search(rf'name="{re.escape(tag_part)}"[^>]*>([^<]*)</textarea>', page)
        form[tag_part] = textarea[1] if textarea else ""
    expires = re.search(r'name="expires"[^>]*value="([^"]+)"', page)[1]
    body = {"csrf_token": csrf, "grade": "red", "event": "rainstorm", "areas": COMMUNITY, "expires": expires, **form}
    resp = await client.post("/console/compose?lang=en", data=body, allow_redirects=False)
    assert resp.status == 422 and "Replace {place} with what it stands for." in await resp.text()
    assert (await (await client.get("/api/v1/warnings", headers=staff["chief"])).json())["warnings"] == []
    filled = {
        k: v.replace("{place}", "Jiangwan").replace("{value}", "55").replace("{unit}", "mm") for k, v in body.items()
    }
    filled = {k: re.sub(r"\{(reading|time|sensor)\}", "x", v) for k, v in filled.items()}
    resp = await client.post("/console/compose?lang=en", data=filled, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    unknown = await (await client.get("/console/compose?template=nope&lang=en")).text()
    assert "No warning template has this id." in unknown


async def test_a_plans_draft_shows_its_reading_and_offers_the_lifting_once_green(client, services, staff, users):
    await plans(client, staff)
    await read(client, staff, services, 35)
    [yellow] = await warnings(client, staff)
    await login(client, "chief", users["chief"])
    listed = await (await client.get("/console?lang=en")).text()
    assert "threshold plan Rain gauge, yellow" in listed and "plan:rain-yellow" not in listed
    page = await (await client.get(f"/console/warnings/{yellow['id']}?lang=en")).text()
    assert "threshold plan Rain gauge, yellow" in page
    assert f"Sensor {SENSOR} read 35 mm (Yellow)" in page and f"#incident-S{SENSOR}" in page
    board = await (await client.get("/console/triage?lang=en")).text()
    assert f'href="/console/warnings/{yellow["id"]}"' in board and "Drafted by plan Rain gauge, yellow" in board
    await act(client, staff, "chief", yellow["id"], "approve")
    assert 'id="cancel-offer"' not in await (await client.get(f"/console/warnings/{yellow['id']}?lang=en")).text()
    await read(client, staff, services, 3)
    page = await (await client.get(f"/console/warnings/{yellow['id']}?lang=en")).text()
    assert 'id="cancel-offer"' in page and "Its plan offers to lift this warning" in page
    board = await (await client.get("/console/triage?status=all&lang=en")).text()
    assert f"/console/warnings/{yellow['id']}#cancel-offer" in board
