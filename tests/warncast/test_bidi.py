"""Bidirectional embedding, override and isolate controls are removed from every stored text, so no
output (CAP, feeds, pages, screens, SMS, Open311, the API) shows a text reordered from what was typed."""

from __future__ import annotations

import json
import re

from citizen_report.chat import parse_sms_report
from citizen_report.intake import submit_report
from citizen_report.queue import drain
from foundation.text import json_without_bidi, without_bidi, without_bidi_in
from tests.citizen_report.test_reports import INSIDE
from tests.publisher.test_workflow import published
from tests.warncast.test_body_limits import BOUNDARY

BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
RLO, PDF, LRI, PDI = "\u202e", "\u202c", "\u2066", "\u2069"


def test_every_bidi_control_is_removed_and_nothing_else() -> None:
    controls = "".join(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
    assert without_bidi(f"a{controls}b 中文 \u200f") == "ab 中文 \u200f"  # marks (LRM/RLM) reorder nothing
    assert without_bidi_in({f"k{RLO}": [f"v{PDF}", 3, None]}) == {"k": ["v", 3, None]}


def test_a_json_body_is_cleaned_whether_a_control_is_written_as_it_is_or_escaped() -> None:
    for control in map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]):
        # As it is, or as JSON's escape (a lower-case u, the hex digits in either case).
        for written in (control, f"\\u{ord(control):04x}", f"\\u{ord(control):04X}"):
            raw = f'{{"k": "a{written}b"}}'
            assert json_without_bidi(raw.encode(), json.loads(raw)) == {"k": "ab"}, raw
    plain = '{"k": "\u200f \u2065 \u206a 中文"}'  # not bidi controls: nothing removed
    assert json_without_bidi(plain.encode(), json.loads(plain)) == json.loads(plain)


async def test_no_output_carries_a_bidi_control(client, services, staff, clock):
    info = {
        "zh-CN": {
            "headline": f"暴雨{RLO}警预{PDF}红色",
            "description": f"降雨{LRI}100毫米{PDI}以上。",
            "instruction": "停止户外活动。",
        },
        "en": {"headline": f"Red {RLO}mrotsniar{PDF} warning", "description": "Rain.", "instruction": "Stay in."},
    }
    warning = await published(client, staff, clock, info=info)
    assert warning["info"]["en"]["headline"] == "Red mrotsniar warning"
    await client.post(
        "/api/v1/reports",
        json={"category": "fire", "description": f"Smoke {RLO}wodniw{PDF}", "address": f"No.{LRI}12{PDI}", **INSIDE},
    )
    form = {"service_code": "waterlogging", "description": f"Water {RLO}brek{PDF}", "lat": "30.666", "long": "121.06"}
    api_key = staff["admin"]["Authorization"].split()[1]
    assert (await client.post("/open311/v2/requests.json", data={**form, "api_key": api_key})).status == 200
    multipart = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="category"\r\n\r\nwaterlogging\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="description"\r\n\r\nFlood {RLO}yawrednu{PDF}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="area"\r\n\r\n990101\r\n--{BOUNDARY}--\r\n'
    )
    resp = await client.post(
        "/api/v1/reports",
        data=multipart.encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert resp.status == 201, await resp.text()
    await submit_report(
        services.reports, parse_sms_report(f"上报 井盖丢失 路口{RLO}西{PDF}", services.registry, phone="+8613700000009")
    )
    await drain(services.reports)
    incidents = (await (await client.get("/api/v1/incidents?status=all", headers=staff["triage"])).json())["incidents"]
    for incident in incidents:
        resp = await client.post(
            f"/api/v1/incidents/{incident['id']}/resolve",
            json={"reason": f"Done {RLO}enod{PDF}"},
            headers=staff["triage"],
        )
        assert resp.status == 200, await resp.text()
    outputs = {
        "cap": f"/cap/{warning['id']}.xml",
        "rss": "/feeds/warnings.rss",
        "atom": "/feeds/warnings.atom",
        "cap index": "/feeds/cap.atom",
        "page": "/?lang=en",
        "warning page": f"/warnings/{warning['id']}?lang=en",
        "api": f"/api/v1/warnings/{warning['id']}",
        "preview (SMS, chat, screens)": f"/api/v1/warnings/{warning['id']}/preview",
        "open311 json": "/open311/v2/requests.json?status=open,closed",
        "open311 xml": "/open311/v2/requests.xml?status=open,closed",
        "incidents": "/api/v1/incidents?status=all",
        "monitoring": "/api/v1/monitoring/items",
    }
    seen = {}
    for name, path in outputs.items():
        resp = await client.get(path, headers=staff["admin"])
        assert resp.status == 200, (name, resp.status)
        seen[name] = await resp.text()
    assert "mrotsniar" in seen["cap"] and "mrotsniar" in seen["preview (SMS, chat, screens)"]
    assert "mrotsniar" in seen["cap"] and "enod" in seen["open311 json"] and "wodniw" in seen["incidents"]
    carrying = [name for name, text in seen.items() if BIDI.search(text)]
    assert carrying == [], f"bidi controls in {carrying}"
