"""Open311 GeoReport v2 under /open311/v2/ (XML and JSON by suffix, errors in the spec's format)."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from aiohttp import web

from channels.cache import redis_away
from citizen_report import open311 as spec
from citizen_report.incidents import Incident
from citizen_report.intake import load_reports, submit_report
from citizen_report.model import CATEGORIES, Report, ReportInput
from citizen_report.routing import load_routing
from foundation.errors import FieldError, NotFound, TooManyRequests, Unavailable, ValidationFailed, WarncastError
from foundation.i18n import N_
from foundation.store import keys
from foundation.store.streams import decoded_list
from warncast.app_keys import ACCOUNTS, AREAS, CATALOGS, REDIS, REPORTS, SETTINGS
from warncast.web.requests import client_ip, form_body, locale, t

routes = web.RouteTableDef()
FMT = "{fmt:xml|json}"
MAX_ROWS = 1000
MAX_SPAN = timedelta(days=90)
Handler = Callable[[web.Request], Awaitable[web.Response]]


class Forbidden403(WarncastError):
    status = 403
    code = "forbidden"


def _format(request: web.Request) -> str:
    """The route's format; outside a route (an unknown path or format, a 405) the path's suffix,
    XML when it is neither: the spec's default."""
    return request.match_info.get("fmt") or ("json" if request.path.endswith(".json") else "xml")


def _respond(request: web.Request, root: str, value: object, status: int = 200) -> web.Response:
    body, content_type = spec.render(_format(request), root, value)
    return web.Response(text=body, status=status, headers={"Content-Type": content_type})


def open311(handler: Handler) -> Handler:
    """Errors in the spec's format (see `open311_error`)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.Response:
        try:
            jurisdiction = request.query.get("jurisdiction_id") or ""
            if jurisdiction and jurisdiction != _jurisdiction(request):
                raise NotFound(N_("Jurisdiction %(id)s is not served here."), id=jurisdiction[:60])
            return await handler(request)
        except WarncastError as error:
            return open311_error(request, error)
        except Exception as exc:
            if not redis_away(exc):
                raise
            return open311_error(request, Unavailable())

    return wrapped


def open311_error(request: web.Request, error: WarncastError) -> web.Response:
    """The spec's list of {code, description}: 404 missing, 403 api_key (and any refused identity),
    405 and 413 as HTTP says, 429 too many requests and 503 briefly unavailable (both with
    Retry-After), 400 the rest. A field is named as Open311 names it (`long`, `address_string`, ...).
    The error middleware uses it too, for every error raised outside a handler under /open311/."""
    if isinstance(error, ValidationFailed):
        errors = [(400, f"{spec.field_name(e.field)}: {t(request, e.message, **e.params)}") for e in error.errors]
    else:
        code = 403 if error.status == 401 else error.status
        errors = [(code if code in (403, 404, 405, 413, 429, 503) else 400, t(request, error.message, **error.params))]
    response = _respond(request, "errors", spec.errors_doc(errors), status=errors[0][0])
    if isinstance(error, (TooManyRequests, Unavailable)) and error.retry_after:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _jurisdiction(request: web.Request) -> str:
    return request.app[SETTINGS].sender.rsplit("@", 1)[-1]


@routes.get(f"/open311/v2/discovery.{FMT}")
@open311
async def discovery(request: web.Request) -> web.Response:
    return _respond(
        request, "discovery", spec.discovery(request.app[SETTINGS].public_url, request.app[SETTINGS].sender)
    )


@routes.get(f"/open311/v2/services.{FMT}")
@open311
async def service_list(request: web.Request) -> web.Response:
    return _respond(request, "services", spec.services_list(request.app[CATALOGS], locale(request)))


@routes.get(f"/open311/v2/services/{{code}}.{FMT}")
@open311
async def service_definition(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    if code not in CATEGORIES:
        raise NotFound(N_("No service with this service_code."))
    return _respond(
        request, "service_definition", spec.service_definition(code, request.app[CATALOGS], locale(request))
    )


@routes.post(f"/open311/v2/requests.{FMT}")
@open311
async def create_request(request: web.Request) -> web.Response:
    form = await form_body(request)
    api_key = str(form.get("api_key") or request.query.get("api_key") or "")
    if not api_key or await request.app[ACCOUNTS].token_actor(api_key) is None:
        raise Forbidden403(N_("Invalid api_key received -- can't proceed with create_request."))
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    code = fields.get("service_code", "")
    if not code:
        raise ValidationFailed([FieldError("service_code", "required", N_("Choose what kind of hazard it is."))])
    if code not in CATEGORIES:
        raise NotFound(N_("No service with this service_code."))
    people_at_risk = _attributes(fields)
    address_id = fields.get("address_id") or None
    if address_id and request.app[AREAS].get(address_id) is None:
        raise ValidationFailed([FieldError("address_id", "unknown", N_("Choose an area from the list."))])
    data = ReportInput(
        category=code,
        description=fields.get("description", ""),
        lat=fields.get("lat") or None,
        lon=fields.get("long") or None,
        area=address_id,
        address=fields.get("address_string", ""),
        phone=fields.get("phone") or None,
        email=fields.get("email") or None,
        people_at_risk=people_at_risk,
        channel="open311",
        locale=locale(request),
        client=client_ip(request),
    )
    submitted = await submit_report(request.app[REPORTS], data, idempotency_key=request.headers.get("Idempotency-Key"))
    notice = ""
    if fields.get("media_url"):  # said only to a client that sent one
        notice = t(request, N_("Photos by media_url are not fetched; send them with POST /api/v1/reports."))
    row = {"service_request_id": submitted.report.id, "service_notice": notice, "account_id": ""}
    return _respond(request, "service_requests", [row])


def _attributes(fields: dict[str, str]) -> bool:
    """The service definition's attributes (only people_at_risk, yes or no): whether anyone is in
    danger. An unknown attribute or a value outside the list is a 400 naming it."""
    errors = []
    for name, value in fields.items():
        if not name.startswith("attribute["):
            continue
        if name != f"attribute[{spec.PEOPLE_AT_RISK}]":
            errors.append(FieldError(name, "unknown", N_("This service has no such attribute.")))
        elif value not in ("yes", "no", ""):
            errors.append(FieldError(name, "choice", N_("Use one of the listed values: yes or no.")))
    if errors:
        raise ValidationFailed(errors)
    return fields.get(f"attribute[{spec.PEOPLE_AT_RISK}]") == "yes"


@routes.get(f"/open311/v2/requests.{FMT}")
@open311
async def list_requests(request: web.Request) -> web.Response:
    query = request.query
    if ids := query.get("service_request_id"):  # overrides every other filter (spec)
        reports = await _reports(request, [i.strip() for i in ids.split(",") if i.strip()][:MAX_ROWS])
        return await _rows(request, reports)
    now = request.app[REPORTS].now()
    end = _date(query.get("end_date"), "end_date") or now
    start = _date(query.get("start_date"), "start_date") or max(end - MAX_SPAN, datetime.min.replace(tzinfo=now.tzinfo))
    if end - start > MAX_SPAN or start > end:
        raise ValidationFailed(
            [FieldError("start_date", "span", N_("start_date to end_date may span at most 90 days."))]
        )
    statuses = {s.strip() for s in query.get("status", "").split(",") if s.strip()}
    if statuses - {"open", "closed"}:
        raise ValidationFailed([FieldError("status", "unknown", N_("Use open, closed or both."))])
    codes = {c.strip() for c in query.get("service_code", "").split(",") if c.strip()}
    try:
        page = max(1, int(query.get("page") or 1))
        page_size = max(1, min(MAX_ROWS, int(query.get("page_size") or MAX_ROWS)))
    except ValueError:
        raise ValidationFailed([FieldError("page", "type", N_("Must be a whole number."))]) from None
    newest = decoded_list(
        await request.app[REDIS].zrevrangebyscore(keys.REPORTS_INDEX, end.timestamp(), start.timestamp())
    )
    reports = [r for r in await _reports(request, newest) if not codes or r.category in codes]
    if statuses:
        reports = [r for r in reports if ("closed" if r.status in ("resolved", "rejected") else "open") in statuses]
    return await _rows(request, reports[(page - 1) * page_size : page * page_size])


@routes.get(f"/open311/v2/requests/{{id}}.{FMT}")
@open311
async def get_request(request: web.Request) -> web.Response:
    reports = await _reports(request, [request.match_info["id"]])
    if not reports:
        raise NotFound(N_("No service request with this id."))
    return await _rows(request, reports)


@routes.get(f"/open311/v2/tokens/{{token}}.{FMT}")
@open311
async def get_token(request: web.Request) -> web.Response:
    """Our requests get their id at once; a report's tracking code also works as its token."""
    token = request.match_info["token"]
    report_id = await request.app[REDIS].hget(keys.REPORTS_BY_TRACKING, token.upper())
    if not report_id:
        raise NotFound(N_("No service request with this token."))
    return _respond(request, "service_requests", [{"service_request_id": report_id, "token": token}])


def _date(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValidationFailed([FieldError(field, "format", N_("Use an ISO 8601 time with its offset."))])
    return parsed


async def _reports(request: web.Request, ids: list[str]) -> list[Report]:
    found = await load_reports(request.app[REPORTS], [i for i in ids if i.isdigit()])
    return list(found.values())


async def _rows(request: web.Request, reports: list[Report]) -> web.Response:
    incident_ids = sorted({r.incident for r in reports if r.incident})
    raws = await request.app[REDIS].mget([keys.incident(i) for i in incident_ids]) if incident_ids else []
    incidents = [Incident(**json.loads(raw)) for raw in raws if raw]
    deadlines = {i.id: i.deadline for i in incidents}
    departments = (await load_routing(request.app[REDIS]))["departments"]
    rows = [
        spec.request_row(
            r,
            catalogs=request.app[CATALOGS],
            locale=locale(request),
            registry=request.app[AREAS],
            departments=departments,
            expected=deadlines.get(r.incident or "", ""),
        )
        for r in reports
    ]
    return _respond(request, "service_requests", rows)
