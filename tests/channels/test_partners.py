"""Partner webhooks end to end: the registry API and console, planning by grade, area and drill flag,
signed posts to a real HTTP receiver on 127.0.0.1 (JSON and CAP), retries, dead letters and 410."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

import pytest
from aiohttp import web
from lxml import etree

from channels.partners.addresses import refused
from channels.partners.channel import verify_signature
from foundation.store import keys
from publisher.dispatch.channel import PermanentError, TemporaryError
from tests.delivery_helpers import drain
from tests.publisher.test_cap import SCHEMA
from tests.publisher.test_workflow import act, published
from tests.warncast.test_console import login
from warncast.web.app import create_app

D1, D2 = "990101", "990102"  # two districts of the demo city
CAP_NS = "{urn:oasis:names:tc:emergency:cap:1.2}"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    """A partner's endpoint: records every POST and answers as told, per path, one mode per request:
    "500", "503", "404", "410", "429" or "429:<Retry-After>", "hang" (never answers in time)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.modes: dict[str, list[str]] = defaultdict(list)
        self.released = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{path:.*}", self.handle)
        self.runner = web.AppRunner(app)
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def fail_next(self, path: str, *modes: str) -> None:
        self.modes[path].extend(modes)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path and r.answered == 200]

    def attempts(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = await request.read()
        mode = self.modes[path].pop(0) if self.modes[path] else "200"
        status = 200 if mode == "hang" else int(mode.split(":")[0])
        self.received.append(Received(path, dict(request.headers), body, status if mode != "hang" else 0))
        if mode == "hang":
            await self.released.wait()  # the sender gives up first; released when the test ends
            return web.Response(status=200)
        headers = {"Retry-After": mode.split(":")[1] if ":" in mode else "0"} if status == 429 else {}
        return web.Response(status=status, text="ok" if status == 200 else "no", headers=headers)

    async def __aenter__(self) -> Receiver:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.base = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.released.set()
        await self.runner.cleanup()


@pytest.fixture
async def receiver():
    async with Receiver() as running:
        yield running


@pytest.fixture
def settings(settings: Any) -> Any:
    # The receiver listens on 127.0.0.1, which partners may post to only when an admin allows it.
    return settings.with_(
        dispatch_backoff=0.01,
        provider_timeout=0.5,
        dispatch_max_attempts=3,
        partner_allow_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128")),
    )


async def register(client: Any, staff: Any, receiver: Receiver, pid: str, **fields: Any) -> str:
    """Register a partner posting to the receiver at /<pid>; returns its secret."""
    body = {"id": pid, "name": f"Partner {pid}", "url": receiver.url(pid), **fields}
    resp = await client.post("/api/v1/partners", json=body, headers=staff["admin"])
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["secret"].startswith("whsec_") and created["secret_hint"].endswith(created["secret"][-4:])
    return created["secret"]  # type: ignore[no-any-return]


async def partner_stats(client: Any, staff: Any, message_id: str) -> dict[str, int]:
    resp = await client.get(f"/api/v1/warnings/{message_id}/deliveries", headers=staff["chief"])
    return (await resp.json())["channels"]["partner"]  # type: ignore[no-any-return]


def verified(request: Received, secret: str) -> bool:
    h = request.headers
    return verify_signature(secret, h["X-Warncast-Timestamp"], request.body, h["X-Warncast-Signature"])


# Delivery


async def test_red_warning_reaches_each_matching_partner_once_signed(client, services, staff, clock, receiver):
    json_secret = await register(client, staff, receiver, "duty-110")
    cap_secret = await register(client, staff, receiver, "duty-119", format="cap", areas=[D1])
    await register(client, staff, receiver, "elsewhere", areas=[D2])
    message = await published(client, staff, clock, grade="red")
    await drain(services)
    await drain(services)  # nothing more to do: exactly once
    assert [r.path for r in receiver.received] in (["duty-110", "duty-119"], ["duty-119", "duty-110"])

    (as_json,) = receiver.at("duty-110")
    assert as_json.headers["Content-Type"] == "application/json; charset=utf-8"
    assert as_json.headers["X-Warncast-Event"] == "alert"
    assert as_json.headers["X-Warncast-Delivery"] == message["id"]
    assert verified(as_json, json_secret)
    body = json.loads(as_json.body)
    assert body["id"] == message["id"] and body["kind"] == "alert" and body["grade"] == "red"
    assert body["cap_url"] == f"http://warncast.test/cap/{message['id']}.xml"
    assert body["info"]["zh-CN"]["headline"] == "滨江区暴雨红色预警"
    assert "drafter" not in body and "approvals" not in body, "partners get the public shape"

    (as_cap,) = receiver.at("duty-119")
    assert as_cap.headers["Content-Type"] == "application/cap+xml; charset=utf-8"
    assert verified(as_cap, cap_secret) and not verified(as_cap, json_secret)
    alert = etree.fromstring(as_cap.body)
    SCHEMA.assertValid(alert)
    assert alert.findtext(f"{CAP_NS}identifier") == message["id"]
    assert alert.findtext(f"{CAP_NS}msgType") == "Alert"

    stats = await partner_stats(client, staff, message["id"])
    assert (stats["planned"], stats["sent"], stats["delivered"], stats["failed"], stats["dead"]) == (2, 2, 2, 0, 0)


async def test_signature_rejects_tampering_replay_and_wrong_secret(client, services, staff, clock, receiver):
    secret = await register(client, staff, receiver, "duty-120")
    await published(client, staff, clock, grade="red")
    await drain(services)
    (request,) = receiver.at("duty-120")
    stamp, header = request.headers["X-Warncast-Timestamp"], request.headers["X-Warncast-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header) and header.startswith(f"t={stamp},")
    assert verify_signature(secret, stamp, request.body, header)
    tampered = request.body.replace(b'"grade":"red"', b'"grade":"blue"')
    assert tampered != request.body and not verify_signature(secret, stamp, tampered, header)
    assert not verify_signature(secret + "x", stamp, request.body, header)
    assert not verify_signature(secret, str(int(stamp) + 1), request.body, header), "timestamp must match"
    late = int(stamp) + 301
    assert not verify_signature(secret, stamp, request.body, header, now=late), "too old: a replay"
    assert verify_signature(secret, stamp, request.body, header, tolerance=400, now=late)
    assert not verify_signature(secret, stamp, request.body, "garbage")


async def test_update_and_cancel_go_out_too(client, services, staff, clock, receiver):
    await register(client, staff, receiver, "d1", areas=[D1])
    await register(client, staff, receiver, "d2", areas=[D2], format="cap")
    original = await published(client, staff, clock, grade="red")
    await drain(services)
    assert [r.path for r in receiver.received] == ["d1"]
    update = await act(client, staff, "drafter", original["id"], "update", status=201, areas=[D1, D2])
    await act(client, staff, "approver", update["id"], "approve")
    await act(client, staff, "chief", update["id"], "approve")
    await drain(services)
    assert [json.loads(r.body)["kind"] for r in receiver.at("d1")] == ["alert", "update"]
    (cap_update,) = receiver.at("d2")
    assert cap_update.headers["X-Warncast-Event"] == "update"
    assert etree.fromstring(cap_update.body).findtext(f"{CAP_NS}msgType") == "Update"
    # The cancel goes back to D1 only: an update that leaves an area still reaches who received it.
    receiver.received.clear()
    cancel = await act(client, staff, "drafter", update["id"], "cancel", status=201, reason="Rain stopped")
    await act(client, staff, "approver", cancel["id"], "approve")
    await drain(services)
    assert sorted(r.path for r in receiver.received) == ["d1", "d2"]
    (cancelled,) = receiver.at("d1")
    body = json.loads(cancelled.body)
    assert body["kind"] == "cancel" and body["msg_type"] == "Cancel" and body["reason"] == "Rain stopped"
    assert cancelled.headers["X-Warncast-Event"] == "cancel"
    assert cancelled.headers["X-Warncast-Delivery"] == cancel["id"]
    cap_cancel = etree.fromstring(receiver.at("d2")[0].body)
    SCHEMA.assertValid(cap_cancel)
    assert cap_cancel.findtext(f"{CAP_NS}msgType") == "Cancel" and original["id"] in cap_cancel.findtext(
        f"{CAP_NS}references"
    )


async def test_grade_area_and_drill_filtering(client, services, staff, clock, receiver):
    await register(client, staff, receiver, "all")
    await register(client, staff, receiver, "orange-up", min_grade="orange")
    await register(client, staff, receiver, "district-2", areas=[D2])
    await register(client, staff, receiver, "city", areas=["990100"])  # the city contains D1
    await register(client, staff, receiver, "drills", include_drills=True)
    await register(client, staff, receiver, "paused", active=False)
    await published(client, staff, clock, grade="yellow")
    await drain(services)
    assert sorted(r.path for r in receiver.received) == ["all", "city", "drills"]
    receiver.received.clear()
    await published(client, staff, clock, grade="orange", areas=[D2])
    await drain(services)
    assert sorted(r.path for r in receiver.received) == ["all", "city", "district-2", "drills", "orange-up"]
    receiver.received.clear()
    drill = await published(client, staff, clock, grade="red", status="Exercise")
    await drain(services)
    assert [r.path for r in receiver.received] == ["drills"], "drills reach only partners that take drills"
    assert json.loads(receiver.received[0].body)["drill"] is True
    assert (await partner_stats(client, staff, drill["id"]))["planned"] == 1


# Failures


async def test_retries_after_500_and_429_then_success(client, services, staff, clock, receiver):
    secret = await register(client, staff, receiver, "flaky")
    receiver.fail_next("flaky", "500", "429:0")
    message = await published(client, staff, clock, grade="red")
    await drain(services)
    attempts = receiver.attempts("flaky")
    assert [a.answered for a in attempts] == [500, 429, 200]
    assert {a.headers["X-Warncast-Delivery"] for a in attempts} == {message["id"]}, "receivers dedupe by it"
    assert all(verified(a, secret) for a in attempts), "every attempt is signed afresh"
    stats = await partner_stats(client, staff, message["id"])
    assert (stats["sent"], stats["retrying"], stats["dead"], stats["failed"]) == (1, 0, 0, 0)


async def test_hanging_partner_times_out_and_is_retried(client, services, staff, clock, receiver):
    await register(client, staff, receiver, "slow")
    receiver.fail_next("slow", "hang")
    await published(client, staff, clock, grade="red")
    await drain(services)
    assert [a.answered for a in receiver.attempts("slow")] == [0, 200]


async def test_dead_letter_after_repeated_failures(client, services, staff, clock, receiver):
    await register(client, staff, receiver, "down")
    await register(client, staff, receiver, "up")
    receiver.fail_next("down", "503", "503", "503", "503")
    message = await published(client, staff, clock, grade="red")
    await drain(services)
    assert len(receiver.attempts("down")) == 3 and not receiver.at("down"), "dispatch_max_attempts = 3"
    assert len(receiver.at("up")) == 1
    dead = await (await client.get("/api/v1/dispatch/dead-letters", headers=staff["chief"])).json()
    assert dead["total"] == 1
    entry = dead["entries"][0]
    assert (entry["ch"], entry["to"], entry["error"]) == ("partner", "down", "http_503")
    stats = await partner_stats(client, staff, message["id"])
    assert (stats["sent"], stats["dead"]) == (1, 1)
    # Replaying after the partner recovered delivers it through the same machinery.
    assert (await client.post("/api/v1/dispatch/dead-letters/replay", headers=staff["chief"])).status == 200
    await drain(services)
    assert len(receiver.at("down")) == 1


async def test_410_gone_deactivates_the_partner(client, services, staff, clock, receiver):
    await register(client, staff, receiver, "retired")
    receiver.fail_next("retired", "410")
    message = await published(client, staff, clock, grade="red")
    await drain(services)
    assert [a.answered for a in receiver.attempts("retired")] == [410], "no retry after 410"
    partner = await (await client.get("/api/v1/partners/retired", headers=staff["drafter"])).json()
    assert partner["active"] is False and "410" in partner["deactivated"]
    stats = await partner_stats(client, staff, message["id"])
    assert (stats["sent"], stats["failed"], stats["dead"]) == (0, 1, 0)
    audit = await (await client.get("/api/v1/audit", headers=staff["admin"])).json()
    assert any(e["action"] == "partner.deactivate" and e["target"] == "retired" for e in audit["entries"])
    await published(client, staff, clock, grade="red")
    await drain(services)
    assert len(receiver.attempts("retired")) == 1, "nothing more goes to a deactivated partner"
    # An admin turns it on again (the partner fixed its endpoint): the reason is cleared.
    body = {k: partner[k] for k in ("name", "url", "format", "min_grade", "areas", "include_drills")}
    resp = await client.put("/api/v1/partners/retired", json={**body, "active": True}, headers=staff["admin"])
    assert (await resp.json())["deactivated"] == ""


async def test_channel_classifies_answers(client, services, staff, clock, receiver):
    await register(client, staff, receiver, "p")
    message = await services.warnings.get((await published(client, staff, clock, grade="red"))["id"])
    channel = services.channels["partner"]
    rendition = await channel.render(message, "json", kind="alert")
    receiver.fail_next("p", "429:7", "500", "404")
    with pytest.raises(TemporaryError) as slow_down:
        await channel.send("p", rendition, reference=message.id)
    assert slow_down.value.retry_after == 7.0 and slow_down.value.code == "http_429"
    with pytest.raises(TemporaryError):
        await channel.send("p", rendition, reference=message.id)
    with pytest.raises(PermanentError) as missing:
        await channel.send("p", rendition, reference=message.id)
    assert missing.value.code == "http_404" and not missing.value.unsubscribe
    result = await channel.send("p", rendition, reference=message.id)
    assert result.status == "delivered"
    with pytest.raises(PermanentError):
        await channel.send("nobody", rendition, reference=message.id)
    moved = {"name": "P", "url": "http://127.0.0.1:9/x"}
    assert (await client.put("/api/v1/partners/p", json=moved, headers=staff["admin"])).status == 200
    with pytest.raises(TemporaryError) as refused:  # nothing listens on the discard port
        await channel.send("p", rendition, reference=message.id)
    assert refused.value.code == "connection"


# Private destinations: refused at registration and at send time, after the name is resolved


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://localhost:6379/",  # our own Redis
        "http://[::1]:8080/hook",
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/hook",
        "http://192.168.1.10/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT: not public
    ],
)
async def test_private_partner_urls_are_refused_at_registration(aiohttp_client, settings, services, staff, url):
    strict = await aiohttp_client(create_app(settings.with_(partner_allow_networks=())))  # no allow-list
    admin = {**staff["admin"], "Accept-Language": "en"}
    resp = await strict.post("/api/v1/partners", json={"id": "p1", "name": "Partner", "url": url}, headers=admin)
    assert resp.status == 422, await resp.text()
    [problem] = (await resp.json())["error"]["fields"]
    assert problem["field"] == "url" and problem["code"] == "private_address"
    assert "public addresses only" in problem["message"]
    assert (await (await strict.get("/api/v1/partners", headers=admin)).json())["partners"] == []
    allowed = await aiohttp_client(
        create_app(settings.with_(partner_allow_networks=(ip_network("0.0.0.0/0"), ip_network("::/0"))))
    )
    assert (
        await allowed.post("/api/v1/partners", json={"id": "p1", "name": "P", "url": url}, headers=admin)
    ).status == 201


async def test_refused_without_the_allow_list_even_when_registered_before(client, services, staff, receiver, clock):
    """A partner registered while its network was allowed (or a name re-pointed at a private address
    since) is refused when sent: the check runs again after resolution, and nothing is posted."""
    await register(client, staff, receiver, "p")
    await register(client, staff, receiver, "named", url=receiver.url("named").replace("127.0.0.1", "localhost"))
    channel = services.channels["partner"]
    message = await services.warnings.get((await published(client, staff, clock))["id"])
    rendition = await channel.render(message, "json", kind="alert")
    channel.ctx = dataclasses.replace(channel.ctx, settings=channel.ctx.settings.with_(partner_allow_networks=()))
    await channel.close()
    await channel.start()
    for pid in ("p", "named"):
        receiver.received.clear()
        with pytest.raises(PermanentError) as refused:
            await channel.send(pid, rendition, reference=message.id)
        assert refused.value.code == "refused_address", pid
        assert receiver.received == [], pid


def test_what_is_public() -> None:
    assert not refused("93.184.215.14", ()) and not refused("2606:2800:21f:cb07:6820:80da:af6b:8b2c", ())
    for address in ("127.0.0.1", "::1", "169.254.169.254", "fe80::1%eth0", "10.0.0.1", "172.16.0.1", "224.0.0.1"):
        assert refused(address, ()), address
    assert not refused("10.0.0.1", (ip_network("10.0.0.0/8"),))
    assert refused("2002:7f00:1::", ()), "6to4 of 127.0.0.1"


# The registry: validation, roles, secrets, audit, console


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"url": "ftp://example.org/hook"}, "url", "scheme"),
        ({"url": "https://user:pw@example.org/hook"}, "url", "credentials"),
        ({"url": "https://example.org:99999/hook"}, "url", "format"),
        ({"url": "not a url"}, "url", "format"),
        ({"url": ""}, "url", "required"),
        ({"format": "xml"}, "format", "choice"),
        ({"min_grade": "purple"}, "min_grade", "choice"),
        ({"areas": ["nowhere"]}, "areas", "unknown"),
        ({"areas": "990101"}, "areas", "type"),
        ({"id": "Bad Id"}, "id", "format"),
        ({"name": ""}, "name", "required"),
        ({"active": "yes"}, "active", "type"),
        ({"secret": "mine"}, "secret", "read_only"),
        ({"colour": "red"}, "colour", "unknown_field"),
    ],
)
async def test_registry_validation_names_the_field_and_stores_nothing(client, services, staff, change, field, code):
    body = {"id": "p1", "name": "Partner", "url": "https://example.org/hook", **change}
    resp = await client.post("/api/v1/partners", json=body, headers={**staff["admin"], "Accept-Language": "en"})
    assert resp.status == 422, await resp.text()
    fields = (await resp.json())["error"]["fields"]
    assert any(f["field"] == field and f["code"] == code and f["message"] for f in fields), fields
    assert (await (await client.get("/api/v1/partners", headers=staff["admin"])).json())["partners"] == []


async def test_roles_secrets_and_audit(client, services, staff, receiver):
    assert (await client.get("/api/v1/partners")).status == 401
    body = {"id": "p1", "name": "Duty desk", "url": "https://duty.example.org/hook"}
    for who in ("drafter", "approver", "chief", "triage"):
        assert (await client.post("/api/v1/partners", json=body, headers=staff[who])).status == 403
    created = await (await client.post("/api/v1/partners", json=body, headers=staff["admin"])).json()
    secret = created["secret"]
    assert (await client.post("/api/v1/partners", json=body, headers=staff["admin"])).status == 409
    for who in ("drafter", "approver", "chief", "triage"):
        assert (await client.put("/api/v1/partners/p1", json=body, headers=staff[who])).status == 403
        assert (await client.delete("/api/v1/partners/p1", headers=staff[who])).status == 403
        assert (await client.post("/api/v1/partners/p1/rotate-secret", headers=staff[who])).status == 403
    for path in ("/api/v1/partners", "/api/v1/partners/p1"):
        resp = await client.get(path, headers=staff["drafter"])
        text = await resp.text()
        assert resp.status == 200 and secret not in text and '"secret"' not in text
        assert created["secret_hint"] in text.encode().decode("unicode_escape")
    rotated = await (await client.post("/api/v1/partners/p1/rotate-secret", headers=staff["admin"])).json()
    assert rotated["secret"] != secret and rotated["secret_hint"] != created["secret_hint"]
    assert await services.redis.hget(keys.PARTNER_SECRETS, "p1") == rotated["secret"]
    edited = await client.put("/api/v1/partners/p1", json={**body, "min_grade": "red"}, headers=staff["admin"])
    assert (await edited.json())["min_grade"] == "red"
    assert await services.redis.hget(keys.PARTNER_SECRETS, "p1") == rotated["secret"], "editing keeps the secret"
    assert (await client.put("/api/v1/partners/nope", json=body, headers=staff["admin"])).status == 404
    assert (await client.delete("/api/v1/partners/p1", headers=staff["admin"])).status == 200
    assert await services.redis.hget(keys.PARTNER_SECRETS, "p1") is None
    assert (await client.get("/api/v1/partners/p1", headers=staff["admin"])).status == 404
    audit = await (await client.get("/api/v1/audit", headers=staff["admin"])).json()
    actions = [e["action"] for e in audit["entries"] if e["target"] == "p1"]
    assert sorted(actions) == ["partner.create", "partner.delete", "partner.edit", "partner.rotate_secret"]
    assert secret not in json.dumps(audit) and rotated["secret"] not in json.dumps(audit)


async def test_console_page_registers_a_partner_and_shows_the_secret_once(client, services, users, receiver):
    token = await login(client, "admin", users["admin"])
    page = await (await client.get("/console/partners")).text()
    assert 'href="/console/partners"' in page and 'name="csrf_token"' in page
    form = {
        "mode": "create",
        "id": "desk",
        "name": "Duty <desk>",
        "url": receiver.url("desk"),
        "format": "cap",
        "min_grade": "orange",
        "areas": D1,
        "active": "on",
    }
    refused = await client.post("/console/partners", data=form)
    assert refused.status == 403, "CSRF token required"
    resp = await client.post("/console/partners", data={**form, "csrf_token": token})
    html = await resp.text()
    assert resp.status == 201 and resp.headers["Cache-Control"] == "no-store"
    secret = re.search(r"<code data-secret>(whsec_[\w-]+)</code>", html).group(1)
    assert await services.redis.hget(keys.PARTNER_SECRETS, "desk") == secret
    assert "Duty &lt;desk&gt;" in html and "Duty <desk>" not in html
    again = await (await client.get("/console/partners")).text()
    assert secret not in again and "data-secret" not in again
    bad = await client.post("/console/partners", data={**form, "id": "other", "url": "ftp://x", "csrf_token": token})
    assert bad.status == 422 and "field-error" in await bad.text()
    assert set(await services.redis.hkeys(keys.PARTNERS)) == {"desk"}
    deleted = await client.post("/console/partners/desk/delete", data={"csrf_token": token}, allow_redirects=False)
    assert deleted.status == 303 and await services.redis.hkeys(keys.PARTNERS) == []


async def test_console_is_read_only_for_staff(client, services, users, staff):
    await client.post(
        "/api/v1/partners", json={"id": "p1", "name": "P", "url": "https://x.example/h"}, headers=staff["admin"]
    )
    token = await login(client, "drafter", users["drafter"])
    page = await (await client.get("/console/partners")).text()
    assert "p1" in page and 'action="/console/partners"' not in page and "whsec_" not in page.replace("whsec_…", "")
    resp = await client.post("/console/partners/p1/delete", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 403
