"""RSS, Atom and the CAP Atom index, read back by feedparser (as aggregators do) and checked
against the CAP schema; filters, drills, escaping, size bound and conditional GET."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import feedparser
from lxml import etree

from channels.feeds import ATOM, FeedQuery
from channels.feeds.render import MAX_BYTES, warnings_feed
from tests.conftest import warning_body
from tests.publisher.test_cap import NS, SCHEMA
from tests.publisher.test_workflow import act, published
from warncast.web.live import OUTLETS

ATOM_NS = {"a": "http://www.w3.org/2005/Atom", "cap": NS["cap"], "georss": "http://www.georss.org/georss"}
COMMUNITY_IN_990102 = "990102001001"


async def city(client, staff, clock):
    """A red warning for district 990101 (updated, then lifted), a blue one for a community of
    990102, and a yellow city-wide drill."""
    red = await published(client, staff, clock, grade="red", areas=["990101"])
    update = await act(client, staff, "drafter", red["id"], "update", status=201, grade="red")
    await act(client, staff, "approver", update["id"], "approve")
    await act(client, staff, "chief", update["id"], "approve")
    cancel = await act(client, staff, "drafter", update["id"], "cancel", status=201, reason="rain has stopped")
    await act(client, staff, "approver", cancel["id"], "approve")
    blue = await published(
        client, staff, clock, grade="blue", event="heat", category="Met", areas=[COMMUNITY_IN_990102]
    )
    drill = await published(client, staff, clock, grade="yellow", areas=["990100"], status="Exercise")
    return {"red": red, "update": update, "cancel": cancel, "blue": blue, "drill": drill}


async def parsed(client, path: str):
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    raw = await resp.read()
    feed = feedparser.parse(raw)
    assert not feed.bozo, feed.bozo_exception
    return feed, raw, resp


def entry_ids(feed) -> list[str]:
    return [e.link.rsplit("/", 1)[1] for e in feed.entries]


async def test_atom_has_one_entry_per_published_message(client, services, staff, clock):
    w = await city(client, staff, clock)
    feed, raw, resp = await parsed(client, "/feeds/warnings.atom?lang=en")
    assert resp.content_type == "application/atom+xml"
    assert feed.version == "atom10"
    newest_first = [w["drill"]["id"], w["blue"]["id"], w["cancel"]["id"], w["update"]["id"], w["red"]["id"]]
    assert entry_ids(feed) == newest_first
    root = etree.fromstring(raw)
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    first = root.find("a:entry", ATOM_NS)
    # Dates carry their offset; the page and the CAP are both linked, with their types.
    assert re.search(r"[+-]\d\d:\d\d$", first.findtext("a:published", namespaces=ATOM_NS))
    links = {link.get("type"): link.get("href") for link in first.findall("a:link", ATOM_NS)}
    assert links["text/html"] == f"http://warncast.test/warnings/{w['drill']['id']}"
    assert links["application/cap+xml"] == f"http://warncast.test/cap/{w['drill']['id']}.xml"
    # The geographic extent as a GeoRSS box: south west north east, inside the demo city.
    south, west, north, east = map(float, first.findtext("georss:box", namespaces=ATOM_NS).split())
    assert 30.5 < south < north < 30.9 and 120.8 < west < east < 121.3
    # The drill is marked in the title and as a category; grade and event are categories.
    drill = feed.entries[0]
    assert drill.title.startswith("[DRILL] ")
    terms = {(t.scheme, t.term) for t in drill.tags}
    assert ("urn:warncast:drill", "drill") in terms and ("urn:warncast:grade", "yellow") in terms
    assert ("urn:warncast:msgType", "Alert") in terms
    cancel = feed.entries[2]
    assert ("urn:warncast:msgType", "Cancel") in {(t.scheme, t.term) for t in cancel.tags}
    assert "Lifted" in cancel.title


async def test_rss_and_language(client, services, staff, clock):
    w = await city(client, staff, clock)
    feed, raw, resp = await parsed(client, "/feeds/warnings.rss?lang=zh-CN")
    assert feed.version == "rss20" and resp.content_type == "application/rss+xml"
    assert feed.feed.language == "zh-CN"
    assert len(feed.entries) == 5
    red = feed.entries[-1]
    assert "滨江区暴雨红色预警" in red.title
    assert red.link == f"http://warncast.test/warnings/{w['red']['id']}"
    enclosure = red.enclosures[0]
    assert enclosure.href.endswith(f"/cap/{w['red']['id']}.xml") and enclosure.type == "application/cap+xml"
    assert red.published_parsed is not None and re.search(r"[+-]\d{4}$", red.published)
    for entry in feed.entries:  # an enclosure's length is its document's size in bytes (RSS 2.0)
        [enclosure] = entry.enclosures
        cap = await (await client.get(enclosure.href.replace("http://warncast.test", ""))).read()
        assert int(enclosure.length) == len(cap) > 0, entry.title
    en, _, _ = await parsed(client, "/feeds/warnings.rss?lang=en")
    assert en.feed.language == "en" and "Red rainstorm warning" in en.entries[-1].title


async def test_filters_by_area_and_grade(client, services, staff, clock):
    w = await city(client, staff, clock)
    # A community: its own warning and the city-wide drill, not the other district's.
    feed, _, _ = await parsed(client, f"/feeds/warnings.atom?area={COMMUNITY_IN_990102}")
    assert entry_ids(feed) == [w["drill"]["id"], w["blue"]["id"]]
    # Its district: the warning for a community under it is included.
    feed, _, _ = await parsed(client, "/feeds/warnings.atom?area=990102")
    assert entry_ids(feed) == [w["drill"]["id"], w["blue"]["id"]]
    feed, _, _ = await parsed(client, "/feeds/warnings.rss?area=990101001")  # a street of 990101
    assert set(entry_ids(feed)) == {w["drill"]["id"], w["cancel"]["id"], w["update"]["id"], w["red"]["id"]}
    feed, _, _ = await parsed(client, "/feeds/warnings.atom?min_grade=orange")
    assert entry_ids(feed) == [w["cancel"]["id"], w["update"]["id"], w["red"]["id"]]
    feed, _, _ = await parsed(client, "/feeds/warnings.atom?min_grade=yellow&area=990103")
    assert entry_ids(feed) == [w["drill"]["id"]]


async def test_bad_filters_are_named(client, services):
    resp = await client.get(
        "/feeds/warnings.atom?area=nowhere&min_grade=purple&lang=fr", headers={"Accept": "application/json"}
    )
    assert resp.status == 422
    fields = {f["field"] for f in (await resp.json())["error"]["fields"]}
    assert fields == {"area", "min_grade", "lang"}


async def test_cap_index_entries_resolve_to_valid_cap(client, services, staff, clock):
    w = await city(client, staff, clock)
    feed, raw, resp = await parsed(client, "/feeds/cap.atom?lang=en")
    assert resp.content_type == "application/atom+xml"
    root = etree.fromstring(raw)
    entries = root.findall("a:entry", ATOM_NS)
    assert len(entries) == 5
    for entry in entries:
        link = entry.find("a:link[@type='application/cap+xml']", ATOM_NS)
        assert link.get("rel") == "alternate"
        path = link.get("href").removeprefix("http://warncast.test")
        cap_resp = await client.get(path)
        assert cap_resp.content_type == "application/cap+xml"
        cap = etree.fromstring(await cap_resp.read())
        assert SCHEMA.validate(cap), SCHEMA.error_log.last_error
        # The index carries what spares a reader the fetch, and it agrees with the CAP.
        info = cap.findall("cap:info", NS)[1]  # en
        assert entry.findtext("cap:identifier", namespaces=ATOM_NS) == cap.findtext("cap:identifier", namespaces=NS)
        for name in ("event", "severity", "urgency", "certainty", "effective", "expires"):
            assert entry.findtext(f"cap:{name}", namespaces=ATOM_NS) == info.findtext(f"cap:{name}", namespaces=NS)
        assert entry.findtext("cap:msgType", namespaces=ATOM_NS) == cap.findtext("cap:msgType", namespaces=NS)
        assert entry.findtext("cap:areaDesc", namespaces=ATOM_NS)
        assert entry.findtext("cap:polygon", namespaces=ATOM_NS) == info.findtext("cap:area/cap:polygon", namespaces=NS)
    drill = entries[0]
    assert drill.findtext("cap:status", namespaces=ATOM_NS) == "Exercise"
    assert drill.findtext("cap:identifier", namespaces=ATOM_NS) == w["drill"]["id"]


async def test_hostile_text_stays_text(client, services, staff, clock):
    evil = '<script>alert("x")</script> & ]]> <img src=x onerror=alert(1)>'
    body = warning_body(clock, grade="blue")
    body["info"]["en"]["headline"] = evil
    body["info"]["en"]["description"] = evil
    resp = await client.post("/api/v1/warnings", json=body, headers=staff["drafter"])
    message = await resp.json()
    await act(client, staff, "drafter", message["id"], "submit")
    await act(client, staff, "approver", message["id"], "approve")
    for path in ("/feeds/warnings.atom?lang=en", "/feeds/warnings.rss?lang=en", "/feeds/cap.atom?lang=en"):
        feed, raw, _ = await parsed(client, path)
        assert b"<script" not in raw and b"<img" not in raw
        entry = feed.entries[0]
        assert evil in entry.title  # the reader gets the exact text back, as text
        bodies = [entry.summary_detail, *entry.get("content", [])]
        for body in bodies:
            if body.type == "text/plain":  # shown as text: the exact text
                assert evil in body.value
            else:  # shown as HTML: escaped, so no element comes of it
                assert "<script" not in body.value and "<img" not in body.value and "&lt;script&gt;" in body.value
    api = await (await client.get("/api/v1/warnings")).json()
    assert api["warnings"][0]["info"]["en"]["headline"] == evil


async def test_feed_size_is_bounded(client, services, staff, clock):
    one = await published(client, staff, clock, grade="blue")
    message = await services.warnings.get(one["id"])
    long_text = replace(message.content.info["en"], description="Flooding expected. " * 150)
    content = replace(message.content, info={**message.content.info, "en": long_text})
    many = [replace(message, id=f"{message.id[:-1]}{i}", content=content) for i in range(400)]
    query = FeedQuery(tag="en")
    body = warnings_feed(
        ATOM, many, query, registry=services.registry, settings=services.settings, catalogs=services.catalogs
    )
    assert 0.8 * MAX_BYTES < len(body) <= MAX_BYTES
    feed = feedparser.parse(body)
    assert not feed.bozo and 50 < len(feed.entries) < 400
    assert feed.entries[0].id.endswith(many[0].id)  # the newest are kept


async def test_conditional_get_and_one_rendering_for_many_readers(client, services, staff, clock):
    await published(client, staff, clock, grade="blue")
    outlets = client.app[OUTLETS]
    before = outlets.cache.renders
    responses = await asyncio.gather(*(client.get("/feeds/warnings.atom?lang=en") for _ in range(50)))
    assert {r.status for r in responses} == {200}
    assert outlets.cache.renders == before + 1
    first = responses[0]
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert len({r.headers["ETag"] for r in responses}) == 1
    assert first.headers["Last-Modified"].endswith("GMT")
    again = await client.get("/feeds/warnings.atom?lang=en", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b"" and again.headers["ETag"] == etag
    weak = await client.get("/feeds/warnings.atom?lang=en", headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status == 304
    since = await client.get(
        "/feeds/warnings.atom?lang=en", headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert since.status == 304
    other = await client.get("/feeds/warnings.atom?lang=en", headers={"If-None-Match": '"stale"'})
    assert other.status == 200
    cap_path = (await (await client.get("/api/v1/warnings")).json())["warnings"][0]["links"]["cap"]
    cap = await client.get(cap_path.removeprefix("http://warncast.test"))
    assert (await client.get(cap.url.path, headers={"If-None-Match": cap.headers["ETag"]})).status == 304


async def test_every_lifecycle_event_invalidates(client, services, staff, clock):
    paths = ["/feeds/warnings.rss?lang=en", "/feeds/cap.atom?lang=en", "/api/v1/warnings?active=true"]

    async def etags() -> list[str]:
        return [(await client.get(p)).headers["ETag"] for p in paths]

    def changed(old: list[str], new: list[str]) -> bool:
        return all(a != b for a, b in zip(old, new, strict=True))

    empty = await etags()
    original = await published(client, staff, clock, grade="blue")
    after_publish = await etags()
    assert changed(empty, after_publish)
    update = await act(client, staff, "drafter", original["id"], "update", status=201, grade="yellow")
    assert await etags() == after_publish, "an unpublished update changes nothing public"
    await act(client, staff, "approver", update["id"], "approve")
    after_update = await etags()
    assert changed(after_publish, after_update)
    cancel = await act(client, staff, "drafter", update["id"], "cancel", status=201)
    await act(client, staff, "approver", cancel["id"], "approve")
    after_cancel = await etags()
    assert changed(after_update, after_cancel)
    active = await (await client.get("/api/v1/warnings?active=true")).json()
    assert active["warnings"] == []
    # Expiry: a second warning lapses; the scheduler's event invalidates the renderings.
    await published(client, staff, clock, grade="blue")
    before_expiry = await etags()
    clock.advance(hours=7)
    assert await services.warnings.run_due() == 1
    await asyncio.sleep(0.05)  # the stream reader picks the event up
    renders = client.app[OUTLETS].cache.renders
    after_expiry = await etags()
    assert client.app[OUTLETS].cache.renders == renders + len(paths), "every rendering is made again"
    assert after_expiry[2] != before_expiry[2]
    assert (await (await client.get("/api/v1/warnings?active=true")).json())["warnings"] == []
