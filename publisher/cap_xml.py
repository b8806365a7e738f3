"""CAP 1.2 XML for one message, valid against the OASIS schema.

Element order follows the XSD sequences; datetimes carry an explicit offset (UTC as -00:00, never
"Z", no fractions). Text goes through lxml, so hostile content is escaped, never interpreted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from lxml import etree

from foundation.areas.registry import AreaRegistry
from foundation.i18n import N_, Catalogs, locale_for_tag
from foundation.settings import Settings
from foundation.xml_signature import Signer
from publisher.cap_shapes import cap_circle, cap_polygon
from publisher.model import Message
from publisher.taxonomy import EVENTS, GRADE_LEVEL, GRADE_SEVERITY

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
DRILL_PREFIX = {"Exercise": N_("[DRILL]"), "Test": N_("[TEST]")}
DRILL_NOTE = {
    "Exercise": N_("This is a drill (exercise). No action is required."),
    "Test": N_("This is a technical test. No action is required."),
}


def cap_datetime(value: datetime) -> str:
    offset = value.utcoffset()
    if value.tzinfo is None or offset is None:
        raise ValueError("CAP datetimes need an explicit offset")
    text = value.replace(microsecond=0).isoformat()
    return text[:-6] + "-00:00" if offset.total_seconds() == 0 else text


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        element.text = text
    return element


def _pair(parent: etree._Element, tag: str, name: str, value: str) -> None:
    element = _sub(parent, tag)
    _sub(element, "valueName", name)
    _sub(element, "value", value)


def render_cap(
    message: Message,
    *,
    references: Iterable[Message],
    registry: AreaRegistry,
    settings: Settings,
    catalogs: Catalogs,
    signer: Signer | None = None,
) -> bytes:
    """The message's CAP, signed (an enveloped XML signature, last in `alert`) when `signer` is given."""
    content = message.content
    sent = datetime.fromisoformat(message.sent) if message.sent else None
    if sent is None:
        raise ValueError("only published messages have a CAP rendition")
    alert = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})  # type: ignore[dict-item]  # stubs omit the None prefix (default namespace)
    _sub(alert, "identifier", message.id)
    _sub(alert, "sender", message.sender_or(settings.sender))
    _sub(alert, "sent", cap_datetime(sent))
    _sub(alert, "status", content.status)
    _sub(alert, "msgType", message.msg_type)
    _sub(alert, "scope", "Public")
    notes = []
    if content.is_drill:
        notes.append(catalogs.text("en", DRILL_NOTE[content.status]))
    if message.msg_type == "Cancel" and message.note:
        notes.append(message.note)
    if notes:
        _sub(alert, "note", " ".join(notes))
    refs = [
        f"{m.sender_or(settings.sender)},{m.id},{cap_datetime(datetime.fromisoformat(m.sent))}"
        for m in references
        if m.sent
    ]
    if refs:
        _sub(alert, "references", " ".join(refs))

    for tag, texts in content.info.items():
        locale = locale_for_tag(tag) or "en"
        t = catalogs.get(locale).gettext
        info = _sub(alert, "info")
        _sub(info, "language", tag)
        _sub(info, "category", content.category)
        _sub(info, "event", t(EVENTS[content.event].name))
        _sub(info, "responseType", content.response_type)
        _sub(info, "urgency", content.urgency)
        _sub(info, "severity", GRADE_SEVERITY[content.grade])
        _sub(info, "certainty", content.certainty)
        _pair(info, "eventCode", "warncast:event", content.event)
        _sub(info, "effective", cap_datetime(content.effective or sent))
        if content.onset:
            _sub(info, "onset", cap_datetime(content.onset))
        _sub(info, "expires", cap_datetime(content.expires))
        _sub(info, "senderName", message.issuer_name(tag, settings.sender_name))
        prefix = f"{t(DRILL_PREFIX[content.status])} " if content.is_drill else ""
        _sub(info, "headline", prefix + texts.headline)
        description = texts.description
        if content.is_drill:
            description = f"{t(DRILL_NOTE[content.status])}\n{description}"
        _sub(info, "description", description)
        if texts.instruction:
            _sub(info, "instruction", texts.instruction)
        _sub(info, "web", f"{settings.public_url}/warnings/{message.id}")
        _pair(info, "parameter", "warncast:grade", content.grade)
        _pair(info, "parameter", "warncast:level", GRADE_LEVEL[content.grade])
        _pair(info, "parameter", "warncast:drill", "true" if content.is_drill else "false")
        for code in content.areas:
            area = registry.get(code)
            if area is None:
                continue
            block = _sub(info, "area")
            _sub(block, "areaDesc", area.name_in(tag))
            _sub(block, "polygon", cap_polygon(area.polygon))
            _pair(block, "geocode", "warncast:area", code)
        for polygon in content.polygons:
            block = _sub(info, "area")
            _sub(block, "areaDesc", t(N_("Drawn area")))
            _sub(block, "polygon", cap_polygon(polygon))
        for circle in content.circles:
            block = _sub(info, "area")
            _sub(block, "areaDesc", t(N_("Drawn circle")))
            _sub(block, "circle", cap_circle(circle))
    document = etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return signer.sign(document) if signer is not None else document
