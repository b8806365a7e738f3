"""Authority within scope: what a user's unit lets their roles do.

A drafter drafts only its unit's event types for areas inside its jurisdiction; a sub-centre may
propose a warning for an area above it, which its parent then issues and approves. Approvers act
on warnings of their unit and of the units under it. A refusal names the unit and what it may do,
in the reader's language (`Localized` parameters), before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from foundation.access.audit import Actor
from foundation.access.units import SUBCENTRE, Organisation, Unit
from foundation.areas.registry import AreaRegistry
from foundation.errors import Forbidden
from foundation.i18n import N_, Localized
from publisher.coverage import circle_geometry
from publisher.model import Content, Message
from publisher.taxonomy import EVENTS

EVERY_EVENT = N_("every event type")
EVERY_AREA = N_("the whole city")
BORDER_TOLERANCE_DEGREES = 1e-5  # about a metre


@dataclass(frozen=True)
class Issuer:
    unit: Unit  # the unit that issues it: its sender, name and code go into the CAP message
    proposed_by: str = ""  # the sub-centre that proposed it for an area above its jurisdiction


def actor_unit(org: Organisation, actor: Actor) -> Unit:
    unit = org.find(actor.unit)
    if unit is None:  # the unit was deleted under the user: no authority until an admin moves them
        raise Forbidden(N_("Your unit no longer exists; ask an administrator to assign you to one."))
    return unit


def issuer_for(org: Organisation, registry: AreaRegistry, actor: Actor, content: Content) -> Issuer:
    """Who issues a warning this actor drafts with this content, or Forbidden."""
    unit = actor_unit(org, actor)
    if unit.may_issue(content.event) and _inside(unit, registry, content):
        return Issuer(unit)
    parent = org.units.get(unit.parent) if unit.kind == SUBCENTRE else None
    if (
        unit.may_issue(content.event)
        and parent is not None
        and _above(unit, registry, content)
        and parent.may_issue(content.event)
        and _inside(parent, registry, content)
    ):
        return Issuer(parent, proposed_by=unit.id)
    raise Forbidden(
        N_("%(unit)s may issue %(events)s for %(areas)s only."),
        unit=unit.label,
        events=_events(unit),
        areas=_areas(unit, registry),
    )


def require_inside(unit: Unit, registry: AreaRegistry, content: Content) -> None:
    """An update's new content stays within the issuing unit's event types and jurisdiction."""
    if not (unit.may_issue(content.event) and _inside(unit, registry, content)):
        raise Forbidden(
            N_("%(unit)s may issue %(events)s for %(areas)s only."),
            unit=unit.label,
            events=_events(unit),
            areas=_areas(unit, registry),
        )


def issuing_unit(org: Organisation, message: Message) -> Unit:
    """The unit a message belongs to (a unit since deleted: the release centre takes it over)."""
    return org.find(message.unit) or org.root


def require_approver_scope(org: Organisation, actor: Actor, message: Message) -> Unit:
    """The approver's unit, when the warning is of it or of a unit under it; else Forbidden."""
    unit = actor_unit(org, actor)
    if not org.within(message.unit, unit.id):
        raise Forbidden(
            N_("%(unit)s may approve only warnings of its own and of the units under it (%(units)s)."),
            unit=unit.label,
            units=Localized.names(*(u.names for u in org.under(unit.id))),
        )
    return unit


def require_drafter_scope(org: Organisation, actor: Actor, message: Message) -> Unit:
    """Editing, submitting, updating, cancelling: the warning's unit lies within the actor's."""
    unit = actor_unit(org, actor)
    if org.within(message.unit, unit.id) or (message.proposed_by and message.proposed_by == unit.id):
        return unit
    raise Forbidden(
        N_("%(unit)s may change only warnings of its own and of the units under it (%(units)s)."),
        unit=unit.label,
        units=Localized.names(*(u.names for u in org.under(unit.id))),
    )


def _inside(unit: Unit, registry: AreaRegistry, content: Content) -> bool:
    if not unit.areas:
        return True
    if not all(unit.covers(code, registry) for code in content.areas):
        return False
    # A drawn shape is inside when all of it is: a polygon's edges and a circle's rim, not only its
    # corners or its centre (a circle round a street office's address reaches the next district).
    shapes: list[BaseGeometry] = [Polygon([(lon, lat) for lat, lon in polygon]) for polygon in content.polygons]
    shapes += [circle_geometry(c) for c in content.circles]
    if not shapes:
        return True
    jurisdiction = _jurisdiction(tuple(unit.areas), registry.version, registry)
    return all(jurisdiction.covers(shape) for shape in shapes)


_JURISDICTIONS: dict[tuple[tuple[str, ...], int], BaseGeometry] = {}


def _jurisdiction(areas: tuple[str, ...], version: int, registry: AreaRegistry) -> BaseGeometry:
    """The union of a unit's areas, widened by about a metre so that a shape drawn along the border
    (snapped to it on the map) is not refused for rounding; kept per registry version."""
    key = (areas, version)
    if key not in _JURISDICTIONS:
        if len(_JURISDICTIONS) > 256:
            _JURISDICTIONS.clear()
        found = [a.geometry for code in areas if (a := registry.get(code)) is not None]
        _JURISDICTIONS[key] = unary_union(found).buffer(BORDER_TOLERANCE_DEGREES)
    return _JURISDICTIONS[key]


def _above(unit: Unit, registry: AreaRegistry, content: Content) -> bool:
    """Whether every area is inside the jurisdiction or contains part of it (the district around a
    street's sub-centre), with no drawn shape: what a sub-centre may propose to its parent. A
    neighbouring district is not above it and stays refused."""
    if content.polygons or content.circles:
        return False
    containing = {a for own in unit.areas for a in registry.ancestors(own)}
    return all(unit.covers(code, registry) or code in containing for code in content.areas)


def _events(unit: Unit) -> Localized:
    return Localized(tuple(EVENTS[e].name for e in unit.events if e in EVENTS) or (EVERY_EVENT,))


def _areas(unit: Unit, registry: AreaRegistry) -> Localized:
    found = [registry.get(code) for code in unit.areas]
    names = [a.name for a in found if a is not None]
    return Localized.names(*names) if names else Localized((EVERY_AREA,))
