"""The operator console: server-rendered pages over the same workflow the API uses."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from foundation.access.audit import Actor
from foundation.access.units import Organisation
from foundation.errors import Forbidden, ValidationFailed, WarncastError
from foundation.i18n import N_, tag_for
from publisher.approval_pages import drafted_by
from publisher.approval_rules import RULE_KEYS, escalate_seconds, validate_rules
from publisher.dispatch.preview import preview
from publisher.dispatch.stats import delivery_stats
from publisher.model import SUBMITTED, Message, Thread
from publisher.scope import require_approver_scope, require_drafter_scope
from publisher.taxonomy import CERTAINTIES, EVENTS, GRADES, STATUSES, URGENCIES
from publisher.warning_templates import WarningTemplate, load_templates
from warncast.app_keys import ACCOUNTS, AREAS, AUDIT, CATALOGS, DISPATCH, REDIS, SERVICES, SETTINGS, WARNINGS
from warncast.threshold_plans import cancellation_offers
from warncast.web.audit_words import action_name, readable_details
from warncast.web.compose_form import content_to_form, form_to_body, form_values, shape_errors
from warncast.web.middleware import error_body
from warncast.web.pages import page
from warncast.web.requests import SESSION_COOKIE, client_ip, form_body, locale, login_required, require_actor, t

routes = web.RouteTableDef()
AUDIT_SCAN = 10_000  # entries a filtered audit page looks through
LOGIN_CSRF_COOKIE = "wc_login_csrf"


def _local(target: str | None) -> str:
    return target if target and target.startswith("/console") and "//" not in target else "/console"


@routes.get("/console/login")
async def login_form(request: web.Request) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = await page(
        request, "console/login.html", login_csrf=token, next=_local(request.query.get("next")), failed=False
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/console/login")
    return response


@routes.post("/console/login")
async def login(request: web.Request) -> web.Response:
    form = await form_body(request)
    given, expected = form.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not isinstance(given, str) or not secrets.compare_digest(given, expected):
        raise _form_expired()
    name, password = str(form.get("username", "")).strip().lower(), str(form.get("password", ""))
    client = client_ip(request) or "unknown"
    actor = await request.app[ACCOUNTS].authenticate(name[:64], password[:256], client)
    if actor is None:
        await request.app[AUDIT].append(name[:64] or "?", "login_failed", "console", client=client)
        return await page(
            request,
            "console/login.html",
            status=401,
            login_csrf=expected,
            next=_local(str(form.get("next", ""))),
            failed=True,
        )
    session_id, _csrf = await request.app[ACCOUNTS].open_session(actor, request.app[SETTINGS].session_hours)
    await request.app[AUDIT].append(actor.label, "login", "console", client=client)
    response = web.HTTPSeeOther(_local(str(form.get("next", ""))))
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS].secure_cookies,
        max_age=request.app[SETTINGS].session_hours * 3600,
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    raise response


def _form_expired() -> WarncastError:
    error = WarncastError(N_("The form has expired or did not come from this site. Reload the page and try again."))
    error.status, error.code = 403, "csrf"
    return error


@routes.post("/console/logout")
async def logout(request: web.Request) -> web.Response:
    actor = require_actor(request)
    await request.app[ACCOUNTS].close_session(request.cookies.get(SESSION_COOKIE, ""))
    await request.app[AUDIT].append(actor.label, "logout", "console")
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(SESSION_COOKIE)
    raise response


@routes.get("/console")
async def dashboard(request: web.Request) -> web.Response:
    login_required(request)
    actor = require_actor(request)
    messages = await request.app[WARNINGS].list(limit=200)
    org = await request.app[WARNINGS].units.organisation()
    own = actor.unit or org.root.id
    if unit_filter := request.query.get("unit"):
        messages = [m for m in messages if (m.unit or org.root.id) == unit_filter]
    # Platform sharing: everything is listed; the drafts and approvals of one's own unit (and of a
    # sub-centre's proposals to it) first, newest first within each group (the list is newest first).
    messages.sort(key=lambda m: 0 if (m.unit or org.root.id) == own or m.proposed_by == own else 1)
    threads = {m.thread: await request.app[WARNINGS].thread(m.thread) for m in messages}
    rules = await request.app[WARNINGS].rules.all()
    return await page(
        request,
        "console/list.html",
        messages=messages,
        threads=threads,
        drafters={
            m.id: drafted_by(m, request.app[CATALOGS], locale(request), tag_for(locale(request))) for m in messages
        },
        events=EVENTS,
        tag=tag_for(locale(request)),
        waiting=[m for m in messages if m.state == SUBMITTED and org.within(m.unit, own)],
        # How long each has waited (publisher/approval_pages.py), and after how long chiefs are paged.
        waited={m.id: int(seconds // 60) for m, seconds in await request.app[SERVICES].approval_pages.waiting()},
        limits={m.id: escalate_seconds(rules, m) // 60 for m in messages if m.state == SUBMITTED},
        to_review=[m for m in messages if m.needs_review],
        org=org,
        own_unit=own,
        unit_filter=unit_filter or "",
    )


async def _compose_page(
    request: web.Request,
    *,
    mode: str,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    message_id: str = "",
    status: int = 200,
    templates: dict[str, WarningTemplate] | None = None,
    chosen_template: str = "",
) -> web.Response:
    await request.app[AREAS].refresh(request.app[REDIS])
    if templates is None and mode == "create":
        templates = await load_templates(request.app[REDIS])
    return await page(
        request,
        "console/compose.html",
        status=status,
        templates=templates or {},
        chosen_template=chosen_template,
        mode=mode,
        values=values,
        errors=errors or {},
        shape_errors=shape_errors(request, errors or {}, values),
        message_id=message_id,
        grades=GRADES,
        events=EVENTS,
        statuses=STATUSES,
        urgencies=URGENCIES,
        certainties=CERTAINTIES,
        areas=request.app[AREAS].areas,
        tag=tag_for(locale(request)),
        languages_order=request.app[SETTINGS].languages,
    )


def _field_errors(request: web.Request, error: ValidationFailed) -> dict[str, str]:
    return {e.field: t(request, e.message, **e.params) for e in error.errors}


@routes.get("/console/compose")
async def compose_form(request: web.Request) -> web.Response:
    login_required(request)
    require_actor(request, "warning.create")
    now = request.app[WARNINGS].now()
    values: dict[str, Any] = {
        "grade": request.query.get("grade", "blue"),
        "event": request.query.get("event", "rainstorm"),
        "status": "Actual",
        "expires": (now + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M"),
        "areas": request.query.getall("area", []),
    }
    errors: dict[str, str] = {}
    templates = await load_templates(request.app[REDIS])
    if chosen := request.query.get("template"):  # "start from a template": its texts, blanks kept
        if (template := templates.get(chosen)) is None:
            errors["template"] = t(request, N_("No warning template has this id."))
        else:
            body = template.body({}, values["areas"], now, keep_unknown=True)
            values |= {"grade": body["grade"], "event": body["event"]}
            values["expires"] = (now + timedelta(hours=template.expires_hours)).strftime("%Y-%m-%dT%H:%M")
            for tag, texts in body["info"].items():
                values |= {f"{tag}.{part}": text for part, text in texts.items()}
    return await _compose_page(
        request, mode="create", values=values, errors=errors, templates=templates, chosen_template=chosen or ""
    )


@routes.post("/console/compose")
async def compose(request: web.Request) -> web.Response:
    actor = require_actor(request, "warning.create")
    form = await form_body(request)
    try:
        message = await request.app[WARNINGS].create(actor, form_to_body(form, request.app[SETTINGS].languages))
        if form.get("then") == "submit":
            await request.app[WARNINGS].submit(actor, message.id)
    except ValidationFailed as error:
        return await _compose_page(
            request, mode="create", values=form_values(form), errors=_field_errors(request, error), status=422
        )
    raise web.HTTPSeeOther(f"/console/warnings/{message.id}")


@routes.get("/console/warnings/{id}")
async def detail(request: web.Request) -> web.Response:
    login_required(request)
    message = await request.app[WARNINGS].get(request.match_info["id"])
    thread = await request.app[WARNINGS].thread(message.thread)
    org = await request.app[WARNINGS].units.organisation()
    quorum = await request.app[WARNINGS].rules.quorum_for(message, org.root.id)
    actor = require_actor(request)
    return await page(
        request,
        "console/detail.html",
        message=message,
        thread=thread,
        # The actions a page offers are the ones the workflow would take from this user.
        may_approve=_within_scope(require_approver_scope, org, actor, message),
        may_change=_within_scope(require_drafter_scope, org, actor, message),
        drafter=drafted_by(message, request.app[CATALOGS], locale(request), tag_for(locale(request))),
        plan=await _plan_source(request, message, thread),
        missing=quorum.missing(message),
        centre_chiefs=bool(quorum.centre) and org.configured,
        unit=org.find(message.unit),
        proposer=org.find(message.proposed_by) if message.proposed_by else None,
        events=EVENTS,
        tag=tag_for(locale(request)),
        registry=request.app[AREAS],
        history=await request.app[WARNINGS].thread_messages(message.thread),
        preview=await preview(request.app[DISPATCH], message),
        stats=await delivery_stats(request.app[DISPATCH], message.id),
        done=_done_notice(request, request.query.get("done", ""), message),
    )


def _within_scope(
    check: Callable[[Organisation, Actor, Message], object], org: Organisation, actor: Actor, message: Message
) -> bool:
    try:
        check(org, actor, message)
    except Forbidden:
        return False
    return True


async def _plan_source(request: web.Request, message: Message, thread: Thread) -> dict[str, Any] | None:
    """What a threshold plan's draft shows of its origin: the reading behind it and, once the
    sensor is back to green, whether the plan offers to lift the warning (a person decides)."""
    if message.source.get("kind") != "plan":
        return None
    episode, offers = await cancellation_offers(request.app[REDIS], request.app[WARNINGS], message.source["sensor"])
    return {
        "source": message.source,
        "ended": episode.ended if episode else "",
        "offer": thread.current == message.id and any(o.id == message.id for o in offers),
    }


@routes.get(r"/console/warnings/{id}/{mode:edit|update}")
async def edit_form(request: web.Request) -> web.Response:
    login_required(request)
    message = await request.app[WARNINGS].get(request.match_info["id"])
    return await _compose_page(
        request, mode=request.match_info["mode"], values=content_to_form(message.content), message_id=message.id
    )


@routes.post(r"/console/warnings/{id}/{mode:edit|update}")
async def edit(request: web.Request) -> web.Response:
    actor = require_actor(request)
    message_id, mode = request.match_info["id"], request.match_info["mode"]
    form = await form_body(request)
    body = form_to_body(form, request.app[SETTINGS].languages)
    try:
        if mode == "edit":
            message = await request.app[WARNINGS].edit(actor, message_id, body)
            if form.get("then") == "submit":
                await request.app[WARNINGS].submit(actor, message.id)
        else:
            message = await request.app[WARNINGS].update(actor, message_id, body)
    except ValidationFailed as error:
        return await _compose_page(
            request,
            mode=mode,
            values=form_values(form),
            message_id=message_id,
            errors=_field_errors(request, error),
            status=422,
        )
    raise web.HTTPSeeOther(f"/console/warnings/{message.id}")


@routes.post(r"/console/warnings/{id}/{action:submit|approve|reject|publish|review|cancel}")
async def act(request: web.Request) -> web.Response:
    actor = require_actor(request)
    message_id, action = request.match_info["id"], request.match_info["action"]
    form = await form_body(request)
    text = str(form.get("comment", ""))
    flow = request.app[WARNINGS]
    try:
        if action == "submit":
            message = await flow.submit(actor, message_id)
        elif action == "approve":
            message = await flow.approve(actor, message_id, text)
        elif action == "reject":
            message = await flow.reject(actor, message_id, text)
        elif action == "publish":
            message = await flow.fast_path(actor, message_id, text)
        elif action == "review":
            message = await flow.review(actor, message_id, text)
        else:
            message = await flow.cancel(actor, message_id, text)
    except ValidationFailed as error:
        body = error_body(request, error)
        return await page(
            request,
            "error.html",
            status=422,
            status_code=422,
            error=body["error"],
            back=f"/console/warnings/{message_id}",
        )
    raise web.HTTPSeeOther(f"/console/warnings/{message.id}?done={action}")


# What the officer is told after an action, on the page it leads to (the state it left the warning in).
DONE = {
    "submit": N_("Submitted for approval."),
    "approve": N_("Your approval is recorded."),
    "reject": N_("Rejected: the drafter sees your reason."),
    "publish": N_("Published on the emergency fast path."),
    "review": N_("Marked as reviewed."),
    "cancel": N_("The cancellation is drafted and waits for approval."),
}
DONE_STATE = {
    "published": N_("The warning is published."),
    "submitted": N_("It still waits for more approvals."),
}


def _done_notice(request: web.Request, action: str, message: Message) -> str:
    if action not in DONE:
        return ""
    notice = t(request, DONE[action])
    if action == "approve" and message.state in DONE_STATE:
        notice += " " + t(request, DONE_STATE[message.state])
    return notice


@routes.get("/console/audit")
async def audit_page(request: web.Request) -> web.Response:
    login_required(request)
    require_actor(request, "audit.read")
    total = await request.app[AUDIT].count()
    unit = request.query.get("unit", "")
    if unit:  # the entries about one unit's warnings, its record and its duty groups
        recent = await request.app[AUDIT].entries(max(0, total - AUDIT_SCAN), -1)
        entries = [e for e in reversed(recent) if e.get("details", {}).get("unit") == unit][:300]
    else:
        entries = (await request.app[AUDIT].entries(max(0, total - 300), -1))[::-1]
    problems = await request.app[AUDIT].verify() if request.query.get("verify") else None
    org = await request.app[WARNINGS].units.organisation()
    return await page(
        request,
        "console/audit.html",
        entries=entries,
        total=total,
        problems=problems,
        org=org,
        unit_filter=unit,
        tag=tag_for(locale(request)),
        action_name=action_name,
        readable_details=readable_details,
    )


@routes.get("/console/rules")
async def rules_page(request: web.Request) -> web.Response:
    login_required(request)
    require_actor(request, "warning.read")
    rules = await request.app[WARNINGS].rules.all()
    return await page(request, "console/rules.html", rules=rules, keys=RULE_KEYS, errors={}, saved=False)


@routes.post("/console/rules")
async def save_rules(request: web.Request) -> web.Response:
    actor = require_actor(request, "rules.edit")
    form = await form_body(request)
    body: dict[str, Any] = {}
    for key in RULE_KEYS:
        try:
            body[key] = {
                "approvals": int(str(form.get(f"{key}.approvals", ""))),
                "chiefs": int(str(form.get(f"{key}.chiefs", ""))),
            }
        except ValueError:
            body[key] = {"approvals": None, "chiefs": None}
        if escalate := str(form.get(f"{key}.escalate_minutes", "")).strip():  # left out: the default
            body[key]["escalate_minutes"] = int(escalate) if escalate.isdigit() else escalate
    try:
        rules = validate_rules(body)
    except ValidationFailed as error:
        return await page(
            request,
            "console/rules.html",
            status=422,
            rules=body,
            keys=RULE_KEYS,
            errors=_field_errors(request, error),
            saved=False,
        )
    before = await request.app[WARNINGS].rules.all()
    await request.app[WARNINGS].rules.save(rules)
    await request.app[AUDIT].append(actor.label, "policy.approval_rules", "approval-rules", before=before, after=rules)
    return await page(request, "console/rules.html", rules=rules, keys=RULE_KEYS, errors={}, saved=True)
