"""Citizen reports on the web: the /report form, the JSON/multipart API and the tracking page."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from citizen_report.incidents import load_incident
from citizen_report.intake import Submitted, load_report, submit_report
from citizen_report.model import CATEGORIES, STATUS_NAMES, Photo, Report, ReportInput, normalise_tracking_code
from citizen_report.open311 import PEOPLE_AT_RISK
from citizen_report.photos import too_many_photos
from foundation.errors import FieldError, NotFound, ValidationFailed
from foundation.i18n import N_, tag_for
from foundation.store.keys import REPORTS_BY_TRACKING
from foundation.store.streams import decoded
from foundation.text import without_bidi
from warncast.app_keys import AREAS, REDIS, REPORTS, SETTINGS
from warncast.web.middleware import error_body
from warncast.web.pages import page
from warncast.web.requests import AUTH_KIND, JSON_UTF8, BadRequest, client_ip, form_body, json_body, locale, t

routes = web.RouteTableDef()
MAX_TEXT_PART = 16 * 1024
MAX_PARTS = 30
MAX_TEXT_TOTAL = 256 * 1024  # the text parts of one form, all together
API_FIELDS = {
    "category",
    "description",
    "lat",
    "lon",
    "area",
    "address",
    "contact",
    "reply_channel",
    "consent",
    "photo_location",
    "people_at_risk",
}


async def read_multipart(request: web.Request) -> tuple[dict[str, str], list[Photo]]:
    """Stream a multipart body with caps counted while it arrives: parts, photos, bytes per part and
    bytes in all. The first part over a cap stops the read, so a chunked body (no Content-Length)
    never holds more than `max_photos` photos in memory."""
    config = request.app[REPORTS].config
    cap = config.max_photos * config.max_photo_bytes + MAX_TEXT_TOTAL
    if request.content_length and request.content_length > cap:
        raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=request.content_length)
    fields: dict[str, str] = {}
    photos: list[Photo] = []
    if request.get(AUTH_KIND) == "session":  # the CSRF check already read the form (1 MB cap)
        for name, value in (await form_body(request)).items():
            if isinstance(value, str):
                fields[name] = value
            elif isinstance(value, web.FileField) and (upload := value.file.read()):
                photos.append(Photo(upload, value.filename))
        return fields, photos
    try:
        reader = await request.multipart()
    except (KeyError, ValueError):  # no boundary, or one past 70 characters
        raise BadRequest(N_("The body is not a valid form.")) from None
    budget = _Budget(cap)
    for _ in range(MAX_PARTS):
        part = await reader.next()
        if part is None:
            return fields, photos
        if not isinstance(part, BodyPartReader):
            raise BadRequest(N_("Nested multipart bodies are not accepted."))
        if part.filename is not None:
            # The photo after the last one allowed is refused at its first bytes, not once read.
            most = config.max_photo_bytes if len(photos) < config.max_photos else 0
            data = await budget.read(part, most)
            if data is None and most == 0:
                raise ValidationFailed([too_many_photos(config.max_photos)])
            if data is None:
                mb = config.max_photo_bytes // (1024 * 1024)
                raise ValidationFailed(
                    [FieldError("photos", "too_large", N_("A photo may be at most %(mb)s MB."), {"mb": mb})]
                )
            if data:  # an empty file input sends an empty part
                photos.append(Photo(data, part.filename))
        elif part.name:
            data = await budget.read(part, MAX_TEXT_PART)
            if data is None:
                raise ValidationFailed([FieldError(part.name, "too_long", N_("This field is too long."))])
            fields[part.name] = without_bidi(data.decode("utf-8", errors="replace"))
    raise BadRequest(N_("The form has too many parts."))


class _Budget:
    """The bytes a whole multipart body may still bring, spent chunk by chunk as parts arrive."""

    def __init__(self, total: int) -> None:
        self.total = self.left = total

    async def read(self, part: BodyPartReader, limit: int) -> bytes | None:
        """The part's bytes, or None at the first chunk past `limit`; 413 past the body's total."""
        chunks, size = [], 0
        while chunk := await part.read_chunk(64 * 1024):
            size += len(chunk)
            self.left -= len(chunk)
            if self.left < 0:
                raise web.HTTPRequestEntityTooLarge(max_size=self.total, actual_size=self.total - self.left)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)


def input_from_fields(request: web.Request, fields: dict[str, Any], photos: list[Photo], channel: str) -> ReportInput:
    contact = fields.get("contact")
    if not isinstance(contact, dict):
        contact = {}
    return ReportInput(
        category=fields.get("category"),
        description="" if fields.get("description") is None else fields["description"],  # null: none given
        lat=fields.get("lat"),
        lon=fields.get("lon"),
        area=_given(fields.get("area")),
        address=fields.get("address", ""),
        photos=photos,
        photo_location=fields.get("photo_location", False),
        phone=_given(contact.get("phone", fields.get("phone"))),
        email=_given(contact.get("email", fields.get("email"))),
        reply_channel=_given(fields.get("reply_channel")),
        consent=fields.get("consent", False),
        people_at_risk=fields.get(PEOPLE_AT_RISK, False),
        channel=channel,
        locale=locale(request),
        client=client_ip(request),
        honeypot=str(fields.get("website", "")),
    )


def _given(value: Any) -> Any:
    """None for a field left out or empty; anything else (an object where text belongs) is
    validated, not taken for absent."""
    return None if value in (None, "") else value


def report_json(request: web.Request, report: Report) -> dict[str, Any]:
    public_url = request.app[SETTINGS].public_url
    return {
        **report.public_json(),
        "status_url": f"{public_url}/report/{report.tracking_code}",
        "api_url": f"{public_url}/api/v1/reports/{report.tracking_code}",
    }


@routes.post("/api/v1/reports")
async def create_report(request: web.Request) -> web.Response:
    """JSON, or multipart/form-data with photos; answers 201 with the tracking code (200 on a replay)."""
    fields: dict[str, Any]  # form fields are strings, JSON ones any JSON value
    if request.content_type == "multipart/form-data":
        form, photos = await read_multipart(request)
        unknown = sorted(set(form) - API_FIELDS - {"contact.phone", "contact.email"})
        if unknown:
            raise ValidationFailed([FieldError(name[:60], "unknown", N_("Unknown field.")) for name in unknown])
        fields = dict(form)  # to take "contact" as an object, like the JSON body's
        if "contact.phone" in fields or "contact.email" in fields:
            fields["contact"] = {"phone": fields.pop("contact.phone", ""), "email": fields.pop("contact.email", "")}
    else:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ValidationFailed([FieldError("", "type", N_("The body must be a JSON object."))])
        unknown = sorted(set(body) - API_FIELDS)
        if unknown:
            raise ValidationFailed([FieldError(name, "unknown", N_("Unknown field.")) for name in unknown])
        if "contact" in body and not isinstance(body["contact"], dict | None):
            raise ValidationFailed([FieldError("contact", "type", N_("The body must be a JSON object."))])
        contact = body.get("contact") or {}
        if unknown := sorted(set(contact) - {"phone", "email"}):
            raise ValidationFailed([FieldError(f"contact.{n}"[:60], "unknown", N_("Unknown field.")) for n in unknown])
        flags = [
            name
            for name in ("consent", "photo_location", PEOPLE_AT_RISK)
            if not isinstance(body.get(name, False), bool)
        ]
        if flags:  # in JSON a yes/no is true or false (a form's "1" or "on" is its own door's)
            raise ValidationFailed([FieldError(name, "type", N_("Must be true or false.")) for name in flags])
        fields, photos = body, []
    data = input_from_fields(request, fields, photos, "api")
    submitted = await submit_report(request.app[REPORTS], data, idempotency_key=request.headers.get("Idempotency-Key"))
    return _created(request, submitted)


def _created(request: web.Request, submitted: Submitted) -> web.Response:
    report = submitted.report
    headers = {"Content-Type": JSON_UTF8, "Location": f"/api/v1/reports/{report.tracking_code}"}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    body = orjson.dumps(report_json(request, report))
    return web.Response(body=body, status=200 if submitted.replayed else 201, headers=headers)


async def _by_tracking(request: web.Request) -> Report:
    code = normalise_tracking_code(request.match_info["tracking_code"])
    report_id = await request.app[REDIS].hget(REPORTS_BY_TRACKING, code) if code else None
    report = await load_report(request.app[REPORTS], decoded(report_id)) if report_id else None
    if report is None:
        raise NotFound(N_("No report with this tracking code."))
    return report


@routes.get("/api/v1/reports/{tracking_code}")
async def get_report(request: web.Request) -> web.Response:
    return web.json_response(report_json(request, await _by_tracking(request)))


@routes.get("/report")
async def report_form(request: web.Request) -> web.Response:
    category = request.query.get("category")
    if category not in CATEGORIES:
        return await page(request, "report/choose.html", categories=CATEGORIES.values(), **_sms(request))
    if CATEGORIES[category].life_safety and request.query.get("safe") != "1":
        return await page(request, "report/emergency.html", category=CATEGORIES[category])
    return await _form(request, {"category": category}, {})


async def _form(
    request: web.Request, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> web.Response:
    tag = tag_for(locale(request))
    areas = [(a.code, a.name_in(tag), a.level) for a in request.app[AREAS].areas if a.level in ("district", "street")]
    values.setdefault("submission", secrets.token_urlsafe(18))
    return await page(
        request,
        "report/form.html",
        status=status,
        category=CATEGORIES[values["category"]],
        categories=CATEGORIES.values(),
        areas=areas,
        values=values,
        errors=errors,
    )


@routes.post("/report")
async def submit_form(request: web.Request) -> web.Response:
    """The no-JavaScript form: errors re-render the form with every field kept; success redirects."""
    fields, photos = await read_multipart(request) if request.content_type == "multipart/form-data" else ({}, [])
    if not fields:
        fields = {k: str(v) for k, v in (await form_body(request)).items() if isinstance(v, str)}
    data = input_from_fields(request, fields, photos, "web")
    try:
        submitted = await submit_report(request.app[REPORTS], data, idempotency_key=fields.get("submission"))
    except ValidationFailed as error:
        body = error_body(request, error)["error"]
        errors: dict[str, str] = {}
        for problem in body["fields"]:
            name = problem["field"].split("[")[0].replace("contact.", "")
            errors[name] = f"{errors[name]} {problem['message']}" if name in errors else problem["message"]
        if fields.get("category") not in CATEGORIES:
            return await page(
                request, "report/choose.html", status=422, categories=CATEGORIES.values(), **_sms(request)
            )
        return await _form(request, fields, errors, status=422)
    raise web.HTTPSeeOther(f"/report/{submitted.report.tracking_code}?new=1")


def _sms(request: web.Request) -> dict[str, Any]:
    return {"sms_number": request.app[SETTINGS].sms_number}


@routes.get("/report/track")
async def track(request: web.Request) -> web.Response:
    """Where a reporter types the tracking code they kept: it leads to the report's page."""
    code = "".join(request.query.get("code", "").split())
    if not code:
        return await page(request, "report/track.html", code="", error="")
    report_id = await request.app[REDIS].hget(REPORTS_BY_TRACKING, code) if len(code) <= 64 else None
    if not report_id:
        error = t(request, N_("No report with this tracking code. Check the code and try again."))
        return await page(request, "report/track.html", status=404, code=code[:64], error=error)
    raise web.HTTPSeeOther(f"/report/{code}")


@routes.get("/report/{tracking_code}")
async def tracking_page(request: web.Request) -> web.Response:
    report = await _by_tracking(request)
    incident = await load_incident(request.app[REPORTS], report.incident) if report.incident else None
    return await page(
        request,
        "report/status.html",
        report=report,
        category=CATEGORIES[report.category],
        statuses=STATUS_NAMES,
        count=incident.count if incident else 1,
        new=request.query.get("new") == "1",
    )
