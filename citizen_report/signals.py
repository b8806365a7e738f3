"""Machine signals into the monitoring queue: threshold readings and upstream CAP alerts.

Readings: per-type thresholds are data (`keys.THRESHOLDS`, defaults below) that give each value a
colour, green / yellow / red; only a change of a sensor's colour raises a queue item, so a sensor
reporting every minute above the line raises one item, not one a minute.

CAP alerts arrive as XML from systems we do not control: the body is size-capped, a DOCTYPE (the
carrier of entity expansion and external entities) is refused outright, and the parser is set to
resolve no entities and fetch nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from lxml import etree

from citizen_report.desk import ReportDesk
from foundation.errors import FieldError, ValidationFailed
from foundation.i18n import N_
from foundation.store import keys
from foundation.store.scripts import script
from foundation.store.streams import as_fields, decoded
from foundation.text import without_bidi
from foundation.xml_signature import split_certificates, verify

log = logging.getLogger(__name__)

MAX_READINGS = 1000
MAX_CAP_BYTES = 256 * 1024
SENSOR_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
CAP_NS = ("urn:oasis:names:tc:emergency:cap:1.2", "urn:oasis:names:tc:emergency:cap:1.1")

DEFAULT_THRESHOLDS: dict[str, dict[str, Any]] = {
    "rainfall_1h": {"unit": "mm", "yellow": 30, "red": 50, "name": {"zh-CN": "小时雨量", "en": "Hourly rainfall"}},
    "water_level": {"unit": "m", "yellow": 4.5, "red": 5.0, "name": {"zh-CN": "水位", "en": "Water level"}},
    "wind_speed": {"unit": "m/s", "yellow": 17.2, "red": 24.5, "name": {"zh-CN": "风速", "en": "Wind speed"}},
    "pm25": {"unit": "µg/m³", "yellow": 115, "red": 250, "name": {"zh-CN": "PM2.5", "en": "PM2.5"}},
    "gas_ppm": {"unit": "ppm", "yellow": 25, "red": 50, "name": {"zh-CN": "可燃气体浓度", "en": "Flammable gas"}},
}
# The event type a breach of each reading type warns of, which decides the responsible unit
# (a threshold entry may name its own with "event").
READING_EVENTS = {
    "rainfall_1h": "rainstorm",
    "water_level": "flood",
    "wind_speed": "thunderstorm",
    "pm25": "air_pollution",
    "gas_ppm": "gas_leak",
}

# KEYS: sensor colours, queue. ARGV: sensor, colour, item fields... Raises an item on a change only.
_COLOUR_CHANGE = script("sensor_colour_change")


async def load_thresholds(redis: aioredis.Redis) -> dict[str, dict[str, Any]]:
    raw = await redis.get(keys.THRESHOLDS)
    return json.loads(raw) if raw else DEFAULT_THRESHOLDS


def colour_of(value: float, limits: dict[str, Any]) -> str:
    if limits.get("direction") == "below":  # e.g. water pressure: low is bad
        return "red" if value <= limits["red"] else "yellow" if value <= limits["yellow"] else "green"
    return "red" if value >= limits["red"] else "yellow" if value >= limits["yellow"] else "green"


async def signal_events(desk: ReportDesk, fields: dict[str, str]) -> list[str]:
    """The event types a queue item of a breach or an upstream alert may be about, likeliest first:
    a breach's reading type mapped to its event; an alert's event codes, then its event name."""
    if fields.get("kind") == "breach":
        limits = (await load_thresholds(desk.redis)).get(fields.get("type", ""), {})
        event = limits.get("event") or READING_EVENTS.get(fields.get("type", ""), "")
        return [event] if event else []
    codes = fields.get("event_codes", "").split()
    name = fields.get("event", "").strip().lower().replace(" ", "_")
    return [*codes, name] if name else codes


async def ingest_readings(desk: ReportDesk, body: Any) -> list[dict[str, Any]]:
    """Validate every reading first (nothing is stored if one is bad), then colour each one."""
    thresholds = await load_thresholds(desk.redis)
    readings = body.get("readings") if isinstance(body, dict) and "readings" in body else [body]
    if not isinstance(readings, list) or not readings or len(readings) > MAX_READINGS:
        raise ValidationFailed(
            [FieldError("readings", "count", N_("Send 1 to %(max)s readings."), {"max": MAX_READINGS})]
        )
    clean = [_reading(desk, i, r, thresholds) for i, r in enumerate(readings)]
    errors = [e for _, errs in clean for e in errs]
    if errors:
        raise ValidationFailed(errors)
    results = []
    for reading, _ in clean:
        limits = thresholds[reading["type"]]
        colour = colour_of(reading["value"], limits)
        item = {
            "kind": "breach",
            "sensor": reading["sensor"],
            "type": reading["type"],
            "value": repr(reading["value"]),
            "unit": limits["unit"],
            "colour": colour,
            "time": reading["time"],
            "area": reading["area"] or "",
            "lat": "" if reading["lat"] is None else repr(reading["lat"]),
            "lon": "" if reading["lon"] is None else repr(reading["lon"]),
            "title": f"{reading['sensor']} {limits['name']['en']} {reading['value']:g} {limits['unit']}",
            "at": desk.now().isoformat(),
        }
        args = [part for pair in item.items() for part in pair]
        changed = await _COLOUR_CHANGE(
            desk.redis, keys=[keys.SENSOR_COLOURS, keys.MONITORING_QUEUE], args=[reading["sensor"], colour, *args]
        )
        results.append({"sensor": reading["sensor"], "colour": colour, "changed": bool(changed)})
    return results


def _reading(
    desk: ReportDesk, index: int, reading: Any, thresholds: dict[str, Any]
) -> tuple[dict[str, Any], list[FieldError]]:
    prefix = f"readings[{index}]"
    errors: list[FieldError] = []
    if not isinstance(reading, dict):
        return {}, [FieldError(prefix, "type", N_("The body must be a JSON object."))]
    sensor, kind, value, time = (reading.get(k) for k in ("sensor", "type", "value", "time"))
    if not isinstance(sensor, str) or not SENSOR_ID.match(sensor):
        errors.append(FieldError(f"{prefix}.sensor", "format", N_("A sensor id of letters, digits and _.:-")))
    if not isinstance(kind, str) or kind not in thresholds:  # a JSON object is no type (nor hashable)
        errors.append(FieldError(f"{prefix}.type", "unknown", N_("No thresholds are defined for this type.")))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append(FieldError(f"{prefix}.value", "type", N_("Must be a number.")))
    try:
        parsed = datetime.fromisoformat(str(time))
        if parsed.tzinfo is None:
            raise ValueError
    except ValueError:
        errors.append(FieldError(f"{prefix}.time", "format", N_("Use an ISO 8601 time with its offset.")))
    area = reading.get("area")
    area = None if area == "" else area  # an empty code is no area; an empty object is not a code
    if area is not None and (not isinstance(area, str) or desk.registry.get(area) is None):
        errors.append(FieldError(f"{prefix}.area", "unknown", N_("Choose an area from the list.")))
    lat, lon = reading.get("lat"), reading.get("lon")
    if (lat is None) != (lon is None) or any(
        v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or abs(v) > m)
        for v, m in ((lat, 90), (lon, 180))
    ):
        errors.append(FieldError(f"{prefix}.lat", "range", N_("Give both latitude and longitude as numbers.")))
    if area is None and lat is not None and lon is not None and not errors:
        inside = desk.registry.containing(lat, lon)
        area = inside[-1].code if inside else None
    clean = {"sensor": sensor, "type": kind, "value": value, "time": str(time), "area": area, "lat": lat, "lon": lon}
    return clean, errors


def parse_cap_alert(
    raw: bytes, registry: Any, trusted: list[bytes] | None = None, require_signed: bool = False
) -> dict[str, str]:
    """The queue item for a CAP 1.1/1.2 alert; ValidationFailed names what is wrong. Its `signature`
    says whether a `trusted` certificate signed it (valid), it is signed otherwise or altered
    (invalid), or it is not signed; with `require_signed` only a valid one is taken."""

    def fail(code: str, message: str, **params: object) -> ValidationFailed:
        return ValidationFailed([FieldError("body", code, message, params)])

    if len(raw) > MAX_CAP_BYTES:
        raise fail("too_large", N_("The alert is larger than %(kb)s KB."), kb=MAX_CAP_BYTES // 1024)
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise fail("doctype", N_("Document type declarations and entities are not accepted."))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_pis=True)
    try:
        root = etree.fromstring(raw, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise fail("xml", N_("The body is not well-formed XML: %(reason)s"), reason=str(exc)[:120]) from None
    # Declared in another encoding than the byte check saw. (lxml-stubs type `docinfo` as a union.)
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise fail("doctype", N_("Document type declarations and entities are not accepted."))
    namespace = etree.QName(root).namespace
    if etree.QName(root).localname != "alert" or namespace not in CAP_NS:
        raise fail("not_cap", N_("The body is not a CAP 1.2 alert."))

    signature = verify(root, trusted or [])
    if require_signed and signature != "valid":
        if signature == "unsigned":
            raise fail("unsigned", N_("Only signed alerts are accepted: this one carries no XML signature."))
        raise fail("bad_signature", N_("The alert's signature does not verify against a trusted certificate."))

    def text(parent: Any, name: str) -> str:
        found = parent.find(f"{{{namespace}}}{name}")
        return without_bidi(found.text or "").strip()[:500] if found is not None else ""

    identifier, sender = text(root, "identifier"), text(root, "sender")
    missing = [n for n in ("identifier", "sender", "sent", "status", "msgType") if not text(root, n)]
    if missing:
        raise fail("missing", N_("The alert lacks required elements: %(names)s."), names=", ".join(missing))
    info = root.find(f"{{{namespace}}}info")
    item = {
        "kind": "alert",
        "key": hashlib.sha256(f"{sender}\0{identifier}".encode()).hexdigest()[:16],
        "identifier": identifier,
        "sender": sender,
        "sent": text(root, "sent"),
        "status": text(root, "status"),
        "msg_type": text(root, "msgType"),
        "event": "",
        "severity": "",
        "urgency": "",
        "title": identifier,
        "area": "",
        "lat": "",
        "lon": "",
        "signature": signature,
    }
    if info is not None:
        item.update(event=text(info, "event"), severity=text(info, "severity"), urgency=text(info, "urgency"))
        codes = [text(code, "value") for code in info.findall(f"{{{namespace}}}eventCode")]
        item["event_codes"] = " ".join(c for c in codes if c and " " not in c)[:500]
        item["title"] = text(info, "headline") or item["event"] or identifier
        for area in info.findall(f"{{{namespace}}}area"):
            for geocode in area.findall(f"{{{namespace}}}geocode"):
                code = text(geocode, "value")
                if registry.get(code):
                    item["area"] = code
                    item["lat"], item["lon"] = (repr(x) for x in registry.get(code).point)
    return item


def trusted_certificates(path: str) -> list[bytes]:
    """The certificates upstream CAP is verified against (`WARNCAST_CAP_TRUSTED_CERTS`, a PEM bundle),
    read again when the file changes."""
    if not path:
        return []
    try:
        return _read_bundle(path, os.stat(path).st_mtime_ns)
    except OSError as exc:
        log.error("WARNCAST_CAP_TRUSTED_CERTS: cannot read %s (%s): upstream alerts count as not verified", path, exc)
        return []


@functools.lru_cache(maxsize=4)
def _read_bundle(path: str, _mtime: int) -> list[bytes]:
    return split_certificates(Path(path).read_bytes())


async def ingest_cap_alert(desk: ReportDesk, raw: bytes) -> dict[str, str]:
    settings = desk.settings
    item = parse_cap_alert(
        raw, desk.registry, trusted_certificates(settings.cap_trusted_certs), settings.cap_require_signed
    )
    item["at"] = desk.now().isoformat()
    entry_id = decoded(await desk.redis.xadd(keys.MONITORING_QUEUE, as_fields(item)))
    return {"id": entry_id, **item}
