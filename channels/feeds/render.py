"""RSS 2.0 and Atom feeds of published warnings, built with feedgen.

One entry per published message (alert, update, cancellation), in one language per feed
(`xml:lang` / `<language>`), with the grade, event and areas as categories, links to the public
page and the CAP message, times with their offset, the geographic extent as a GeoRSS box, and
drills marked in the title and as a category. Text is escaped by lxml; the HTML bodies readers
display are built from escaped pieces, so hostile text stays text.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from channels.feeds.select import FeedQuery, newest
from foundation.areas.registry import AreaRegistry
from foundation.i18n import N_, Catalogs, locale_for_tag
from foundation.settings import Settings
from publisher.coverage import footprint
from publisher.model import Message
from publisher.wording import Wording, word

MAX_BYTES = 900_000  # aggregators (Google Public Alerts) reject larger feeds
SCHEME = "urn:warncast:"
ATOM, RSS = "atom", "rss"
CONTENT_TYPES = {ATOM: "application/atom+xml; charset=utf-8", RSS: "application/rss+xml; charset=utf-8"}


class LinkAttributes(BaseEntryExtension):
    """feedgen 1.0 writes an Atom entry's <link> with its href only, dropping rel, type and title;
    this puts them back on the element it wrote (see `entry_link`)."""

    def __init__(self) -> None:
        self.by_href: dict[str, dict[str, str]] = {}

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        for element in entry.findall("link"):
            for name, value in self.by_href.get(element.get("href", ""), {}).items():
                element.set(name, value)
        return entry


def entry_link(fe: FeedEntry, href: str, **attrs: str) -> None:
    fe.link(href=href, **attrs)
    fe.linkattrs.by_href[href] = attrs


def message_links(settings: Settings, message: Message) -> tuple[str, str]:
    """The public page and the CAP message of one message."""
    return f"{settings.public_url}/warnings/{message.id}", f"{settings.public_url}/cap/{message.id}.xml"


def entry_html(w: Wording, page: str, cap: str, labels: dict[str, str]) -> str:
    """The readable body of an entry: every piece escaped, then joined with markup."""
    e = html.escape
    parts = [f"<p><strong>{e(w.drill)}</strong></p>"] if w.drill else []
    parts.append(f"<p>{e(w.grade_warning)} · {e(w.event)}</p>")
    parts.append(f"<p>{e(w.description)}</p>".replace("\n", "<br>"))
    if w.instruction:
        parts.append(f"<p><strong>{e(labels['todo'])}:</strong> {e(w.instruction)}</p>")
    parts.append(f"<p>{e(labels['areas'])}: {e(w.areas)}</p>")
    parts.append(f"<p>{e(w.until)}</p>")
    parts.append(f'<p><a href="{e(page)}">{e(labels["page"])}</a> · <a href="{e(cap)}">CAP</a></p>')
    return "".join(parts)


def geo_box(message: Message, registry: AreaRegistry) -> str | None:
    """GeoRSS box "south west north east" around everything the message targets."""
    shape = footprint(message.content, registry)
    if shape is None:
        return None
    west, south, east, north = shape.bounds
    return " ".join(f"{v:.5f}" for v in (south, west, north, east))


def new_feed(settings: Settings, *, title: str, tag: str, self_url: str, updated: datetime, kind: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("geo")
    fg.register_extension("linkattrs", BaseExtension, LinkAttributes, atom=True, rss=False)
    fg.id(self_url)
    fg.title(title)
    fg.language(tag)
    fg.author({"name": settings.sender_name})
    fg.link(href=self_url, rel="self", type=CONTENT_TYPES[kind].split(";")[0])
    fg.link(href=f"{settings.public_url}/", rel="alternate", type="text/html")
    fg.description(title)
    fg.generator("warncast", uri=settings.public_url)
    # Fixed times, never "now": the same warnings give the same bytes (and ETag) in every process.
    fg.updated(updated)
    fg.lastBuildDate(updated)
    return fg


def warnings_feed(
    kind: str,
    messages: list[Message],
    query: FeedQuery,
    *,
    registry: AreaRegistry,
    settings: Settings,
    catalogs: Catalogs,
    cap_sizes: dict[str, int] | None = None,
) -> bytes:
    """`cap_sizes`: each message's CAP document in bytes (RSS enclosures say their length)."""
    locale = locale_for_tag(query.tag) or "en"

    def t(msgid: str, **params: object) -> str:
        return catalogs.text(locale, msgid, **params)

    title = t(N_("Lanjiang early warnings"))
    if query.area and (area := registry.get(query.area)):
        title = f"{title}: {area.name_in(query.tag)}"
    labels = {"todo": t(N_("What to do")), "areas": t(N_("Areas")), "page": t(N_("Warning page"))}
    self_url = f"{settings.public_url}/feeds/warnings.{kind}?{query.query_string()}"

    def build(entries: list[Message]) -> bytes:
        fg = new_feed(settings, title=title, tag=query.tag, self_url=self_url, updated=newest(entries), kind=kind)
        for message in entries:
            w = word(message, query.tag, registry=registry, catalogs=catalogs, settings=settings)
            add_entry(
                fg.add_entry(order="append"),
                kind,
                message,
                w,
                registry=registry,
                settings=settings,
                labels=labels,
                cap_size=(cap_sizes or {}).get(message.id, 0),
            )
        return fg.atom_str(pretty=True) if kind == ATOM else fg.rss_str(pretty=True)

    return bounded(build, messages)


def bounded(build: Callable[[list[Message]], bytes], messages: list[Message]) -> bytes:
    """Render, dropping the oldest entries until the feed fits in MAX_BYTES."""
    body = build(messages)
    while len(body) > MAX_BYTES and messages:
        keep = min(len(messages) - 1, int(len(messages) * MAX_BYTES / len(body) * 0.95))
        messages = messages[: max(keep, 0)]
        body = build(messages)
    return body


def add_entry(
    fe: FeedEntry,
    kind: str,
    message: Message,
    w: Wording,
    *,
    registry: AreaRegistry,
    settings: Settings,
    labels: dict[str, str],
    cap_size: int = 0,
) -> None:
    content = message.content
    page, cap = message_links(settings, message)
    sent = datetime.fromisoformat(message.sent or "")
    fe.title(w.title)
    fe.published(sent)
    fe.updated(sent)
    if w.issuer:  # the issuing unit, when units are configured (the feed's author otherwise)
        fe.author({"name": w.issuer})
    body = entry_html(w, page, cap, labels)
    if kind == ATOM:
        fe.id(page)
        entry_link(fe, page, rel="alternate", type="text/html")
        entry_link(fe, cap, rel="related", type="application/cap+xml", title="CAP 1.2")
        fe.summary(f"{w.drill}\n{w.description}".strip(), type="text")
        fe.content(body, type="html")
    else:
        fe.guid(page, permalink=True)
        fe.link(href=page, rel="alternate")
        fe.enclosure(url=cap, length=str(cap_size), type="application/cap+xml")
        fe.description(body)
    categories = [
        ("grade", content.grade, w.grade_warning),
        ("event", content.event, w.event),
        ("msgType", message.msg_type, message.msg_type),
        ("status", content.status, content.status),
    ]
    if content.is_drill:
        categories.append(("drill", "drill", w.drill))
    for scheme, term, label in categories:
        if kind == ATOM:
            fe.category(term=term, scheme=f"{SCHEME}{scheme}", label=label)
        else:
            fe.category(term=term, scheme=f"{SCHEME}{scheme}")
    if box := geo_box(message, registry):
        fe.geo.box(box)
