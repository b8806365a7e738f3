"""Partner webhooks: the registry API and console page (staff read, admins edit; secrets shown once)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from channels.partners.addresses import refused_url
from channels.partners.registry import FORMATS, Partner, PartnerRegistry, parse_partner
from foundation.access.audit import Actor
from foundation.errors import FieldError, ValidationFailed
from foundation.i18n import N_, tag_for
from publisher.taxonomy import GRADE_NAMES, GRADES
from warncast.app_keys import AREAS, AUDIT, REDIS, SETTINGS
from warncast.web.pages import page
from warncast.web.requests import form_body, json_body, locale, login_required, require_actor, t

routes = web.RouteTableDef()
PARTNER = "{id:[a-z0-9][a-z0-9-]{0,39}}"


def _registry(request: web.Request) -> PartnerRegistry:
    return PartnerRegistry(request.app[REDIS])


def _public(partner: Partner) -> dict[str, Any]:
    return {**partner.as_json(), "links": {"self": f"/api/v1/partners/{partner.id}"}}


def _with_secret(partner: Partner, secret: str) -> web.Response:
    response = web.json_response({**_public(partner), "secret": secret})
    response.headers["Cache-Control"] = "no-store"  # the only time the secret is shown
    return response


# Operations (shared by the API and the console).


async def _create(request: web.Request, actor: Actor, body: Any) -> tuple[Partner, str]:
    await request.app[AREAS].refresh(request.app[REDIS])
    partner, secret = await _registry(request).create(await _checked(request, parse_partner(body, request.app[AREAS])))
    await request.app[AUDIT].append(actor.label, "partner.create", partner.id, after=partner.as_json())
    return partner, secret


async def _replace(request: web.Request, actor: Actor, body: Any, partner_id: str) -> Partner:
    await request.app[AREAS].refresh(request.app[REDIS])
    partner = await _checked(request, parse_partner(body, request.app[AREAS], partner_id=partner_id))
    before, after = await _registry(request).replace(partner)
    await request.app[AUDIT].append(
        actor.label, "partner.edit", partner_id, before=before.as_json(), after=after.as_json()
    )
    return after


async def _checked(request: web.Request, partner: Partner) -> Partner:
    """A partner whose URL points at a private, loopback or link-local address is refused."""
    if address := await refused_url(partner.url, request.app[SETTINGS].partner_allow_networks):
        message = N_("Partners are posted to public addresses only; %(address)s is not one.")
        raise ValidationFailed([FieldError("url", "private_address", message, {"address": address})])
    return partner


async def _rotate(request: web.Request, actor: Actor, partner_id: str) -> tuple[Partner, str]:
    partner, secret = await _registry(request).rotate_secret(partner_id)
    await request.app[AUDIT].append(actor.label, "partner.rotate_secret", partner_id, secret_hint=partner.secret_hint)
    return partner, secret


async def _delete(request: web.Request, actor: Actor, partner_id: str) -> None:
    registry = _registry(request)
    before = await registry.get(partner_id)  # NotFound names the problem
    await registry.delete(partner_id)
    await request.app[AUDIT].append(actor.label, "partner.delete", partner_id, before=before.as_json())


# API


@routes.get("/api/v1/partners")
async def list_partners(request: web.Request) -> web.Response:
    require_actor(request, "partners.read")
    return web.json_response({"partners": [_public(p) for p in (await _registry(request).all()).values()]})


@routes.post("/api/v1/partners")
async def create_partner(request: web.Request) -> web.Response:
    actor = require_actor(request, "partners.manage")
    partner, secret = await _create(request, actor, await json_body(request))
    response = _with_secret(partner, secret)
    response.set_status(201)
    response.headers["Location"] = f"/api/v1/partners/{partner.id}"
    return response


@routes.get(f"/api/v1/partners/{PARTNER}")
async def get_partner(request: web.Request) -> web.Response:
    require_actor(request, "partners.read")
    return web.json_response(_public(await _registry(request).get(request.match_info["id"])))


@routes.put(f"/api/v1/partners/{PARTNER}")
async def put_partner(request: web.Request) -> web.Response:
    actor = require_actor(request, "partners.manage")
    partner = await _replace(request, actor, await json_body(request), request.match_info["id"])
    return web.json_response(_public(partner))


@routes.delete(f"/api/v1/partners/{PARTNER}")
async def delete_partner(request: web.Request) -> web.Response:
    actor = require_actor(request, "partners.manage")
    await _delete(request, actor, request.match_info["id"])
    return web.json_response({"deleted": request.match_info["id"]})


@routes.post(f"/api/v1/partners/{PARTNER}/rotate-secret")
async def rotate_secret(request: web.Request) -> web.Response:
    actor = require_actor(request, "partners.manage")
    partner, secret = await _rotate(request, actor, request.match_info["id"])
    return _with_secret(partner, secret)


# Console


def _form_body(form: Any) -> dict[str, Any]:
    body: dict[str, Any] = {k: str(form.get(k, "")) for k in ("id", "name", "url", "format", "min_grade")}
    body["areas"] = [str(v) for v in form.getall("areas", []) if str(v)]
    body["active"] = form.get("active") == "on"
    body["include_drills"] = form.get("include_drills") == "on"
    return body


async def _console_page(request: web.Request, *, status: int = 200, **context: Any) -> web.Response:
    login_required(request)
    require_actor(request, "partners.read")
    partners = list((await _registry(request).all()).values())
    context.setdefault("new_secret", None)  # shown once, right after creating or rotating
    context.setdefault("shown", None)
    edit = context.setdefault("edit", None)
    if "values" not in context:
        found = next((p for p in partners if p.id == edit), None)
        context["values"] = found.as_json() if found else {"active": True}
    response = await page(
        request,
        "console/partners.html",
        status=status,
        partners=partners,
        areas=request.app[AREAS].areas,
        registry=request.app[AREAS],
        formats=FORMATS,
        grades=GRADES,
        grade_names=GRADE_NAMES,
        tag=tag_for(locale(request)),
        errors=context.pop("errors", {}),
        **context,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/console/partners")
async def console_partners(request: web.Request) -> web.Response:
    return await _console_page(request, edit=request.query.get("edit"))


@routes.post("/console/partners")
async def console_save(request: web.Request) -> web.Response:
    actor = require_actor(request, "partners.manage")
    form = await form_body(request)
    edit = str(form.get("id", "")) if form.get("mode") == "edit" else None
    body = _form_body(form)
    try:
        if edit is None:
            partner, secret = await _create(request, actor, body)
            return await _console_page(request, status=201, new_secret=secret, shown=partner)
        partner = await _replace(request, actor, body, edit)
    except ValidationFailed as failed:
        errors = {e.field: t(request, e.message, **e.params) for e in failed.errors}
        return await _console_page(request, status=422, values=body, errors=errors, edit=edit)
    raise web.HTTPSeeOther(f"/console/partners#partner-{partner.id}")


@routes.post(f"/console/partners/{PARTNER}/rotate-secret")
async def console_rotate(request: web.Request) -> web.Response:
    actor = require_actor(request, "partners.manage")
    partner, secret = await _rotate(request, actor, request.match_info["id"])
    return await _console_page(request, new_secret=secret, shown=partner)


@routes.post(f"/console/partners/{PARTNER}/delete")
async def console_delete(request: web.Request) -> web.Response:
    actor = require_actor(request, "partners.manage")
    await _delete(request, actor, request.match_info["id"])
    raise web.HTTPSeeOther("/console/partners")
