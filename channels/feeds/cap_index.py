"""The CAP Atom index (`/feeds/cap.atom`), after the OASIS "CAP Feeds" practice and NWS's index.

Each entry is one published CAP message: its id and alternate link are the CAP document
(`type="application/cap+xml"`), and it carries in the CAP namespace the fields a reader needs to
decide whether to fetch it (identifier, sent, status, msgType, event, urgency, severity, certainty,
effective, expires, areaDesc, polygon, circle, geocode), as NWS does "to reduce the need to query
the complete CAP message". The feed links the certificates the messages are signed with.
"""

from __future__ import annotations

from datetime import datetime

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from lxml import etree

from channels.feeds.render import ATOM, bounded, entry_link, geo_box, message_links, new_feed
from channels.feeds.select import FeedQuery, newest
from foundation.areas.registry import AreaRegistry
from foundation.i18n import N_, Catalogs, locale_for_tag
from foundation.settings import Settings
from publisher.cap_xml import CAP_NS, cap_datetime
from publisher.model import Message
from publisher.taxonomy import GRADE_SEVERITY
from publisher.wording import word


class CapFeedExtension(BaseExtension):
    def extend_ns(self) -> dict[str, str]:
        return {"cap": CAP_NS}


class CapEntryExtension(BaseEntryExtension):
    """Adds `cap:*` elements to an Atom entry, in CAP's own element order."""

    def __init__(self) -> None:
        self.fields: list[tuple[str, str | tuple[str, str]]] = []

    def add(self, name: str, value: str | tuple[str, str]) -> None:
        self.fields.append((name, value))

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        for name, value in self.fields:
            element = etree.SubElement(entry, f"{{{CAP_NS}}}{name}")
            if isinstance(value, tuple):  # geocode: valueName and value
                etree.SubElement(element, f"{{{CAP_NS}}}valueName").text = value[0]
                etree.SubElement(element, f"{{{CAP_NS}}}value").text = value[1]
            else:
                element.text = value
        return entry

    def extend_rss(self, entry: etree._Element) -> etree._Element:
        return entry


def cap_index(
    messages: list[Message], query: FeedQuery, *, registry: AreaRegistry, settings: Settings, catalogs: Catalogs
) -> bytes:
    locale = locale_for_tag(query.tag) or "en"
    title = catalogs.text(locale, N_("CAP alerts: %(sender)s"), sender=settings.sender_name)
    self_url = f"{settings.public_url}/feeds/cap.atom?{query.query_string()}"

    def build(entries: list[Message]) -> bytes:
        fg = new_feed(settings, title=title, tag=query.tag, self_url=self_url, updated=newest(entries), kind=ATOM)
        fg.register_extension("cap", CapFeedExtension, CapEntryExtension, atom=True, rss=False)
        # Each message is signed; the certificates to verify them with (each signature carries its own).
        fg.link(
            href=f"{settings.public_url}/cap/certificates.pem",
            rel="related",
            type="application/x-pem-file",
            title=catalogs.text(locale, N_("Certificates of the CAP signatures")),
        )
        for message in entries:
            add_cap_entry(fg.add_entry(order="append"), message, query.tag, registry, settings, catalogs)
        return fg.atom_str(pretty=True)

    return bounded(build, messages)


def add_cap_entry(
    fe, message: Message, tag: str, registry: AreaRegistry, settings: Settings, catalogs: Catalogs
) -> None:
    content = message.content
    page, cap = message_links(settings, message)
    sent = datetime.fromisoformat(message.sent or "")
    w = word(message, tag, registry=registry, catalogs=catalogs, settings=settings)
    fe.id(cap)
    fe.title(w.title)
    fe.published(sent)
    fe.updated(sent)
    entry_link(fe, cap, rel="alternate", type="application/cap+xml", title="CAP 1.2")
    entry_link(fe, page, rel="related", type="text/html")
    fe.summary(f"{w.drill}\n{w.description}".strip(), type="text")
    fe.author({"name": message.issuer_name(tag, settings.sender_name)})
    if box := geo_box(message, registry):
        fe.geo.box(box)
    ext: CapEntryExtension = fe.cap
    ext.add("identifier", message.id)
    ext.add("sender", message.sender_or(settings.sender))
    ext.add("sent", cap_datetime(sent))
    ext.add("status", content.status)
    ext.add("msgType", message.msg_type)
    ext.add("scope", "Public")
    ext.add("language", tag)
    ext.add("category", content.category)
    ext.add("event", w.event)
    ext.add("urgency", content.urgency)
    ext.add("severity", GRADE_SEVERITY[content.grade])
    ext.add("certainty", content.certainty)
    ext.add("effective", cap_datetime(content.effective or sent))
    if content.onset:
        ext.add("onset", cap_datetime(content.onset))
    ext.add("expires", cap_datetime(content.expires))
    ext.add("headline", w.marked_headline)
    ext.add("areaDesc", w.areas)
    for code in content.areas:
        if area := registry.get(code):
            ext.add("polygon", " ".join(f"{lat},{lon}" for lat, lon in area.polygon))
    for polygon in content.polygons:
        ext.add("polygon", " ".join(f"{lat},{lon}" for lat, lon in polygon))
    for circle in content.circles:
        ext.add("circle", f"{circle.lat},{circle.lon} {circle.radius_km}")
    for code in content.areas:
        ext.add("geocode", ("warncast:area", code))
    ext.add("parameter", ("warncast:grade", content.grade))
