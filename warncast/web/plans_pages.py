"""The console's editors of the threshold plans and the warning templates: a table of plans and a
card per template, saved whole through the API's own `replace_plans` / `replace_templates`, so a
form is refused for exactly what the API refuses, with the problem shown at its row's field."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from citizen_report.signals import load_thresholds
from foundation.errors import Conflict, ValidationFailed
from foundation.i18n import tag_for
from publisher.taxonomy import EVENTS, GRADES
from publisher.validation import LIMITS, PLACEHOLDERS
from publisher.warning_templates import as_json, load_templates
from warncast.app_keys import AREAS, REDIS, SETTINGS
from warncast.threshold_plans import COLOURS, load_plans
from warncast.web.pages import page
from warncast.web.plans import plans_json, replace_plans, replace_templates
from warncast.web.requests import form_body, locale, login_required, require_actor, t

routes = web.RouteTableDef()

BLANK_ROWS = 2  # empty rows under the saved ones, to add plans or templates without JavaScript
CODES = re.compile(r"[\s,，、;；]+")  # the separators a person types between codes
# `plans[3].areas` -> (3, "areas"); `templates[0].info.en.headline` -> (0, "info.en.headline")
AT_ROW = re.compile(r"^(?:plans|templates)\[(\d+)\]\.?(.*)$")


@routes.get("/console/plans")
async def plans_page(request: web.Request) -> web.Response:
    login_required(request)
    require_actor(request, "report.read")
    return await _plans_page(request, plans_json(await load_plans(request.app[REDIS])), {}, saved=False)


@routes.post("/console/plans")
async def save_plans_form(request: web.Request) -> web.Response:
    actor = require_actor(request, "plans.edit")
    rows, kept = _plan_rows(await form_body(request), request.app[SETTINGS].languages)
    try:
        saved = await replace_plans(request, actor, {"plans": [rows[i] for i in kept]})
    except ValidationFailed as error:
        errors = _row_errors(request, error, kept)
        return await _plans_page(request, rows, errors, saved=False, status=422, deleted=_deleted(rows, kept))
    return await _plans_page(request, saved, {}, saved=True)


def _plan_rows(form: MultiDictProxy[Any], languages: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[int]]:
    """Every row as typed (to show again if refused), but those left empty, and the indices of the
    rows to save: a row ticked to delete is not saved."""
    deleted = set(form.getall("delete", []))
    enabled = set(form.getall("enabled", []))
    rows: list[dict[str, Any]] = []
    kept: list[int] = []
    for row in form.getall("row", []):
        plan_id, names = _id_and_names(form, row, languages)
        plan: dict[str, Any] = {
            "id": plan_id,
            "name": names,
            "reading": str(form.get(f"{row}.reading", "")),
            "colour": str(form.get(f"{row}.colour", "")),
            "template": str(form.get(f"{row}.template", "")),
            **{name: _codes(form.get(f"{row}.{name}", "")) for name in ("areas", "sensors", "warn_areas")},
            "enabled": row in enabled,
        }
        if not plan_id and not any(v.strip() for v in names.values()):
            continue  # an empty row: the page adds its own again
        if row not in deleted:
            kept.append(len(rows))
        rows.append(plan)
    return rows, kept


def _id_and_names(form: MultiDictProxy[Any], row: str, languages: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """A row's id and names: a row with neither is an empty one, not a plan or template to refuse."""
    names = {tag: str(form.get(f"{row}.name.{tag}", "")) for tag in languages}
    return str(form.get(f"{row}.id", "")).strip(), names


def _deleted(rows: list[dict[str, Any]], kept: list[int]) -> frozenset[int]:
    """The rows ticked to delete: shown ticked again when the save is refused."""
    return frozenset(range(len(rows))) - frozenset(kept)


def _codes(value: Any) -> list[str]:
    return [code for code in CODES.split(str(value)) if code]


async def _plans_page(
    request: web.Request,
    plans: list[dict[str, Any]],
    errors: dict[str, str],
    *,
    saved: bool,
    status: int = 200,
    deleted: frozenset[int] = frozenset(),
) -> web.Response:
    redis, registry = request.app[REDIS], request.app[AREAS]
    blank = {"id": "", "name": {}, "reading": "", "colour": "red", "template": "", "enabled": True}
    blank |= {"areas": [], "sensors": [], "warn_areas": []}
    return await page(
        request,
        "console/plans.html",
        status=status,
        rows=list(plans) + [blank] * BLANK_ROWS,
        readings=await load_thresholds(redis),
        templates=await load_templates(redis),
        colours=COLOURS,
        registry=registry,
        languages_order=request.app[SETTINGS].languages,
        tag=tag_for(locale(request)),
        errors=errors,
        saved=saved,
        deleted=deleted,
    )


@routes.get("/console/templates")
async def templates_page(request: web.Request) -> web.Response:
    login_required(request)
    require_actor(request, "warning.read")
    return await _templates_page(request, as_json(await load_templates(request.app[REDIS])), {}, saved=False)


@routes.post("/console/templates")
async def save_templates_form(request: web.Request) -> web.Response:
    actor = require_actor(request, "plans.edit")
    cards, kept = _template_cards(await form_body(request), request.app[SETTINGS].languages)
    try:
        saved = await replace_templates(request, actor, {"templates": [cards[i] for i in kept]})
    except ValidationFailed as error:
        errors = _row_errors(request, error, kept)
        return await _templates_page(request, cards, errors, saved=False, status=422, deleted=_deleted(cards, kept))
    except Conflict as error:  # a plan still drafts from a template ticked for deletion
        problem = {"": t(request, error.message, **error.params)}
        return await _templates_page(request, cards, problem, saved=False, status=409, deleted=_deleted(cards, kept))
    return await _templates_page(request, saved, {}, saved=True)


def _template_cards(form: MultiDictProxy[Any], languages: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[int]]:
    deleted = set(form.getall("delete", []))
    cards: list[dict[str, Any]] = []
    kept: list[int] = []
    for row in form.getall("row", []):
        hours = str(form.get(f"{row}.expires_hours", "")).strip()
        template_id, names = _id_and_names(form, row, languages)
        card: dict[str, Any] = {
            "id": template_id,
            "name": names,
            "grade": str(form.get(f"{row}.grade", "")),
            "event": str(form.get(f"{row}.event", "")),
            "expires_hours": int(hours) if hours.isdigit() else hours,  # not a number: validation says so
            "info": {
                tag: {part: str(form.get(f"{row}.info.{tag}.{part}", "")) for part in LIMITS} for tag in languages
            },
        }
        if not template_id and not any(v.strip() for v in names.values()):
            continue  # an empty card: the page adds its own again
        if row not in deleted:
            kept.append(len(cards))
        cards.append(card)
    return cards, kept


async def _templates_page(
    request: web.Request,
    templates: list[dict[str, Any]],
    errors: dict[str, str],
    *,
    saved: bool,
    status: int = 200,
    deleted: frozenset[int] = frozenset(),
) -> web.Response:
    languages = request.app[SETTINGS].languages
    blank = {"id": "", "name": {}, "grade": "yellow", "event": "rainstorm", "expires_hours": 6, "info": {}}
    used = {p.template for p in await load_plans(request.app[REDIS])}
    return await page(
        request,
        "console/warning_templates.html",
        status=status,
        cards=list(templates) + [blank],
        grades=GRADES,
        events=EVENTS,
        placeholders=PLACEHOLDERS,
        parts=LIMITS,
        used=used,
        languages_order=languages,
        errors=errors,
        saved=saved,
        deleted=deleted,
    )


def _row_errors(request: web.Request, error: ValidationFailed, kept: list[int]) -> dict[str, str]:
    """The API's field errors (`plans[1].areas`, numbered among the rows saved) keyed by the form's
    row and field (`4.areas`), so each shows beside what the user typed."""
    out: dict[str, str] = {}
    for e in error.errors:
        message = t(request, e.message, **e.params)
        if (match := AT_ROW.match(e.field)) and int(match[1]) < len(kept):
            key = f"{kept[int(match[1])]}.{match[2]}"
        else:
            key = e.field
        out[key] = f"{out[key]} {message}" if key in out else message
    return out
