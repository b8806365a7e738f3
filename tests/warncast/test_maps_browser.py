"""The maps in a real browser (Debian's chromium through Playwright): composing on the map (clicking
communities, drawing a circle and a refused polygon, keyboard search), the public map on a phone,
and an incident's point on the triage map. Every page is watched for CSP violations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lxml import etree

from tests.publisher.test_cap import NS, SCHEMA
from tests.warncast.test_browser import _demo, _login, base_url, browser  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(150)


async def _approved_cap(services, message_id: str):
    """The warning approved (and so published), as its CAP document, checked against the OASIS XSD."""
    from foundation.access.audit import Actor
    from publisher.cap_xml import render_cap

    message = await services.warnings.approve(Actor("approver", frozenset({"approver"})), message_id)
    assert message.state == "published"
    root = etree.fromstring(
        render_cap(
            message, references=[], registry=services.registry, settings=services.settings, catalogs=services.catalogs
        )
    )
    assert SCHEMA.validate(root), SCHEMA.error_log.last_error
    return root


def _watch_csp(page) -> list[str]:
    """Console errors (a CSP refusal is one), script errors and missing files, for the test to
    assert there are none. A 422 is the live preview's answer to an unfinished form: expected."""
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None,
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status not in (200, 204, 303, 304, 422) else None,
    )
    # A preview still on its way when the form is submitted is aborted by the navigation: not an error.
    page.on("requestfailed", lambda r: errors.append(f"failed {r.url}") if "ABORTED" not in (r.failure or "") else None)
    return errors


async def _ready(page, map_id: str) -> None:
    await page.wait_for_function("id => /^[0-9]+$/.test(document.getElementById(id).dataset.ready || '')", arg=map_id)
    await page.locator(f"#{map_id}").scroll_into_view_if_needed()


async def _screen_point(page, map_id: str, lat: float, lon: float) -> tuple[float, float]:
    """Where (lat, lon) is on the screen, from the map's own projection (the map scrolled into view)."""
    await page.locator(f"#{map_id}").scroll_into_view_if_needed()
    return tuple(
        await page.evaluate(
            """([id, lat, lon]) => { const m = window.warncastMaps[id].map;
                 const p = m.latLngToContainerPoint([lat, lon]); const r = m.getContainer().getBoundingClientRect();
                 return [r.left + p.x, r.top + p.y]; }""",
            [map_id, lat, lon],
        )
    )


async def _click_area(page, map_id: str, area) -> None:
    x, y = await _screen_point(page, map_id, *area.point)
    await page.mouse.click(x, y)


async def _fill_texts(page, clock) -> None:
    await page.fill("#expires", (clock.now + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M"))
    await page.fill("input[name='zh-CN.headline']", "大风蓝色预警")
    await page.fill("textarea[name='zh-CN.description']", "阵风8级。")
    await page.fill("input[name='en.headline']", "Blue gale warning")
    await page.fill("textarea[name='en.description']", "Gusts of force 8.")


async def test_compose_by_clicking_two_communities_and_drawing_a_circle(browser, base_url, clock):  # noqa: F811
    base, server = base_url
    services = await _demo(server, ("drafter", ["drafter"]))
    communities = [a for a in services.registry.areas if a.level == "community"][:2]
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors = _watch_csp(page)
    await _login(page, base, "drafter", "drafter-password")
    await page.goto(f"{base}/console/compose?lang=en")
    await _ready(page, "compose-map")
    for area in communities:
        await _click_area(page, "compose-map", area)
    # The list (the no-JS path) follows the map.
    chosen = await page.eval_on_selector("#areas", "s => Array.from(s.selectedOptions).map(o => o.value)")
    assert sorted(chosen) == sorted(a.code for a in communities)

    await page.click("#draw-circle")
    centre = await _screen_point(page, "compose-map", *communities[0].point)
    edge = (centre[0] + 90, centre[1] + 10)
    expected_km = await page.evaluate(
        """([c, e]) => { const m = window.warncastMaps['compose-map'].map;
             const r = m.getContainer().getBoundingClientRect();
             const a = m.containerPointToLatLng([c[0] - r.left, c[1] - r.top]);
             const b = m.containerPointToLatLng([e[0] - r.left, e[1] - r.top]); return m.distance(a, b) / 1000; }""",
        [list(centre), list(edge)],
    )
    await page.mouse.click(*centre)
    await page.mouse.click(*edge)
    await page.locator("#shape-list li[data-shape=circle]").wait_for()
    # The drawn circle is a line of the circles field, in CAP's text: the one record on submit.
    drawn = (await page.input_value("textarea[name=circles]")).split(" ")
    assert len(drawn) == 2 and abs(float(drawn[1]) - expected_km) <= expected_km * 0.01
    await _fill_texts(page, clock)
    # The live preview's coverage reaches the map: at least the two communities and the circle's.
    await page.wait_for_function("() => Number(document.getElementById('compose-map').dataset.coverage || 0) >= 2")
    await page.click("button[value=submit]")
    await page.wait_for_url("**/console/warnings/*")
    message_id = page.url.split("/console/warnings/", 1)[1].split("?")[0]
    assert errors == []
    await context.close()

    root = await _approved_cap(services, message_id)
    info = root.find("cap:info", NS)
    geocodes = [v.text for v in info.findall("cap:area/cap:geocode/cap:value", NS)]
    assert sorted(geocodes) == sorted(a.code for a in communities)
    circles = [c.text for c in info.findall("cap:area/cap:circle", NS)]
    assert len(circles) == 1
    point, radius = circles[0].split(" ")
    lat, lon = (float(x) for x in point.split(","))
    assert abs(float(radius) - expected_km) <= expected_km * 0.01
    assert services.registry.containing(lat, lon)[-1].code == communities[0].code


async def test_a_self_intersecting_polygon_is_refused_with_the_field_error(browser, base_url, clock):  # noqa: F811
    base, server = base_url
    services = await _demo(server, ("drafter", ["drafter"]))
    district = next(a for a in services.registry.areas if a.level == "district")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors = _watch_csp(page)
    await _login(page, base, "drafter", "drafter-password")
    await page.goto(f"{base}/console/compose?lang=en")
    await _ready(page, "compose-map")
    x, y = await _screen_point(page, "compose-map", *district.point)
    await page.click("#draw-polygon")
    for dx, dy in ((-40, -40), (40, 40), (40, -40), (-40, 40)):  # a bow tie: its edges cross
        await page.mouse.click(x + dx, y + dy)
    await page.click("#draw-finish")
    problem = page.locator("#shape-error")
    await problem.wait_for(state="visible")
    assert "The polygon is not valid" in await problem.text_content()
    assert await page.input_value("textarea[name=polygons]") == ""
    assert await page.locator("#shape-list li").count() == 0
    # Two clicks make no polygon either: the API's own words about the points.
    await page.click("#draw-polygon")
    await page.mouse.click(x - 30, y - 30)
    await page.mouse.click(x + 30, y + 30)
    await page.click("#draw-finish")
    await page.wait_for_function("() => document.getElementById('shape-error').textContent.includes('needs 4')")
    assert await page.input_value("textarea[name=polygons]") == ""
    assert errors == []
    await context.close()


async def test_keyboard_only_area_search_and_selection(browser, base_url):  # noqa: F811
    base, server = base_url
    services = await _demo(server, ("drafter", ["drafter"]))
    community = [a for a in services.registry.areas if a.level == "community"][3]
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await _login(page, base, "drafter", "drafter-password")
    await page.goto(f"{base}/console/compose?lang=en")
    await _ready(page, "compose-map")
    await page.focus("#area-search")
    await page.keyboard.type(community.code)
    await page.keyboard.press("ArrowDown")
    active = await page.get_attribute("#area-search", "aria-activedescendant")
    assert active and await page.get_attribute(f"#{active}", "data-code") == community.code
    await page.keyboard.press("Enter")
    chosen = await page.eval_on_selector("#areas", "s => Array.from(s.selectedOptions).map(o => o.value)")
    assert chosen == [community.code]
    assert community.name_in("en") in await page.locator("#map-status").text_content()
    # Enter picked an area; it did not submit the form.
    assert "/console/compose" in page.url
    # The list and the map stay in step the other way too: picked in the list, coloured on the map.
    other = [a for a in services.registry.areas if a.level == "community"][4]
    await page.select_option("#areas", [community.code, other.code])
    fill = """code => { const wc = window.warncastMaps['compose-map'];
                 return wc.leaves.getLayers().find(l => l.feature.properties.code === code).options.fillColor; }"""
    assert await page.evaluate(fill, other.code) == "#1d4ed8"
    await page.select_option("#areas", [community.code])
    assert await page.evaluate(fill, other.code) != "#1d4ed8"
    await context.close()


async def test_public_map_on_a_phone_lists_a_tapped_areas_warnings(browser, base_url, clock):  # noqa: F811
    base, server = base_url
    services = await _demo(server)
    from foundation.access.audit import Actor
    from tests.conftest import warning_body

    community = [a for a in services.registry.areas if a.level == "community"][0]
    district = next(services.registry.get(c) for c in services.registry.ancestors(community.code))
    while district.level != "district":
        district = services.registry.get(district.parent)
    body = warning_body(clock, areas=[district.code], grade="yellow")
    body["info"]["en"]["headline"] = "Yellow rainstorm warning"
    drafter, approver = Actor("d", frozenset({"drafter"})), Actor("a", frozenset({"approver"}))
    message = await services.warnings.create(drafter, body)
    await services.warnings.submit(drafter, message.id)
    assert (await services.warnings.approve(approver, message.id)).state == "published"

    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = await phone.new_page()
    errors = _watch_csp(page)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    await page.goto(f"{base}/?lang=en")
    await _ready(page, "public-map")
    x, y = await _screen_point(page, "public-map", *community.point)
    await page.touchscreen.tap(x, y)
    listing = page.locator("#map-warnings")
    await listing.locator("a").first.wait_for()
    assert community.name_in("en") in await listing.text_content()
    assert "Yellow rainstorm warning" in await listing.text_content()
    assert await listing.locator("a").first.get_attribute("href") == f"/warnings/{message.id}"
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []
    # Without WARNCAST_MAP_TILES no request leaves the server's origin.
    assert asked and all(url.startswith((base + "/", "data:")) for url in asked), asked
    await phone.close()


async def test_triage_map_shows_a_point_for_a_new_report(browser, base_url, clock):  # noqa: F811
    base, server = base_url
    services = await _demo(server, ("triage", ["triage"]))
    community = [a for a in services.registry.areas if a.level == "community"][5]
    lat, lon = community.point
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors = _watch_csp(page)
    await _login(page, base, "triage", "triage-password")

    from citizen_report.intake import submit_report
    from citizen_report.queue import consume
    from warncast.app_keys import REPORTS

    desk = server.app[REPORTS]
    from citizen_report.model import ReportInput

    data = ReportInput(category="waterlogging", description="Underpass flooded", lat=lat, lon=lon, consent=True)
    await submit_report(desk, data)
    assert await consume(desk, "test") == 1
    await page.goto(f"{base}/console/triage?lang=en")
    await _ready(page, "triage-map")
    marker = page.locator("#triage-map .triage-dot").first
    await marker.wait_for()
    box = await marker.bounding_box()
    x, y = await _screen_point(page, "triage-map", lat, lon)
    assert abs(box["x"] + box["width"] / 2 - x) < 3 and abs(box["y"] + box["height"] / 2 - y) < 3
    incident_id = await marker.get_attribute("data-incident")
    await marker.click()
    await page.wait_for_function("id => location.hash === '#incident-' + id", arg=incident_id)
    # A click on an area (away from the point) filters the board by it, as the SVG's links did.
    other = [a for a in services.registry.areas if a.level == "community"][40]
    await _click_area(page, "triage-map", other)
    await page.wait_for_url(f"**/console/triage?area={other.code}")
    assert errors == []
    await context.close()


async def test_drawn_shapes_are_edited_and_deleted(browser, base_url):  # noqa: F811
    base, server = base_url
    services = await _demo(server, ("drafter", ["drafter"]))
    district = next(a for a in services.registry.areas if a.level == "district")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors = _watch_csp(page)
    await _login(page, base, "drafter", "drafter-password")
    await page.goto(f"{base}/console/compose?lang=en")
    await _ready(page, "compose-map")
    x, y = await _screen_point(page, "compose-map", *district.point)
    await page.click("#draw-polygon")
    for dx, dy in ((-40, -40), (40, -40), (40, 40)):
        await page.mouse.click(x + dx, y + dy)
    await page.click("#draw-finish")
    await page.locator("#shape-list li[data-shape=polygon]").wait_for()
    ring = (await page.input_value("textarea[name=polygons]")).split(" ")  # the drawn polygon, as CAP text
    assert len(ring) == 4 and ring[0] == ring[-1]
    # Drag the first corner: the ring moves with it and stays closed.
    await page.click("#shape-list li[data-shape=polygon] >> text=Edit")
    handle = page.locator(".wc-map-handle").first
    box = await handle.bounding_box()
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(box["x"] - 20, box["y"] - 20, steps=5)
    await page.mouse.up()
    await page.wait_for_function(
        "first => document.querySelector('textarea[name=polygons]').value.split(' ')[0] !== first", arg=ring[0]
    )
    moved = (await page.input_value("textarea[name=polygons]")).split(" ")
    assert moved[0] == moved[-1] and moved[0] != ring[0] and moved[1:3] == ring[1:3]
    # A circle's radius typed from the keyboard; then both deleted.
    await page.click("#draw-circle")
    await page.mouse.click(x, y)
    await page.mouse.click(x + 50, y)
    radius = page.locator("#shape-list input[data-radius-of='0']")
    await radius.fill("2.5")
    await radius.press("Enter")
    await page.wait_for_function("() => document.querySelector('textarea[name=circles]').value.includes('2.5')")
    assert (await page.input_value("textarea[name=circles]")).endswith(" 2.5")
    await page.click("#shape-list li[data-shape=circle] >> text=Delete")
    await page.wait_for_function("() => document.querySelector('textarea[name=circles]').value === ''")
    await page.click("#shape-list li[data-shape=polygon] >> text=Delete")
    await page.wait_for_function("() => document.querySelector('textarea[name=polygons]').value === ''")
    assert await page.locator("#shape-list li").count() == 0
    assert errors == []
    await context.close()


async def test_a_kiosk_with_a_map_shows_the_warnings_areas(browser, base_url, clock):  # noqa: F811
    base, server = base_url
    services = await _demo(server)
    from foundation.access.audit import Actor
    from tests.conftest import warning_body

    drafter, approver = Actor("d", frozenset({"drafter"})), Actor("a", frozenset({"approver"}))
    message = await services.warnings.create(drafter, warning_body(clock, areas=["990101"], grade="yellow"))
    await services.warnings.submit(drafter, message.id)
    await services.warnings.approve(approver, message.id)
    token = await services.accounts.create_token("admin", ["admin"])
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    created = await context.request.post(
        f"{base}/api/v1/screens",
        data={"id": "hall", "name": "Hall", "area": "990101", "show_map": True},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status == 201
    page = await context.new_page()
    errors = _watch_csp(page)
    await page.goto(f"{base}/screens/hall")
    await _ready(page, "kiosk-map")
    box = await page.locator("#kiosk-map").bounding_box()
    assert box["height"] > 100 and box["width"] > 300
    assert errors == []
    await context.close()


async def test_a_click_picks_the_chosen_level_and_shift_click_the_community(browser, base_url):  # noqa: F811
    base, server = base_url
    services = await _demo(server, ("drafter", ["drafter"]))
    first, second = [a for a in services.registry.areas if a.level == "community"][:2]
    district = next(services.registry.get(c) for c in services.registry.ancestors(first.code) if len(c) == 6)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await _login(page, base, "drafter", "drafter-password")
    await page.goto(f"{base}/console/compose?lang=en")
    await _ready(page, "compose-map")
    await page.check("input[name=pick_level][value=district]")
    await _click_area(page, "compose-map", first)
    x, y = await _screen_point(page, "compose-map", *second.point)
    await page.keyboard.down("Shift")
    await page.mouse.click(x, y)
    await page.keyboard.up("Shift")
    chosen = await page.eval_on_selector("#areas", "s => Array.from(s.selectedOptions).map(o => o.value)")
    assert sorted(chosen) == sorted([district.code, second.code])
    # A second click in the same district takes the district off again.
    await _click_area(page, "compose-map", first)
    chosen = await page.eval_on_selector("#areas", "s => Array.from(s.selectedOptions).map(o => o.value)")
    assert chosen == [second.code]
    await context.close()


async def test_configured_tiles_are_drawn_under_the_csp(browser, aiohttp_server, settings, clock):  # noqa: F811
    """A tile server on another origin (a local stand-in): the map asks it for tiles, the CSP lets
    exactly those images in, and the credit shows as text."""
    import base64

    from aiohttp import web

    from warncast.web.app import create_app

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    tile_requests: list[str] = []

    async def tile(request: web.Request) -> web.Response:
        tile_requests.append(request.path)
        return web.Response(body=png, content_type="image/png")

    tiles_app = web.Application()
    tiles_app.router.add_get("/{z}/{x}/{y}.png", tile)
    tiles = await aiohttp_server(tiles_app)
    template = f"http://127.0.0.1:{tiles.port}/{{z}}/{{x}}/{{y}}.png"
    app = create_app(settings.with_(map_tiles=template, map_tiles_attribution="Tiles <b>test</b>"), clock=clock)
    server = await aiohttp_server(app)
    await _demo(server)
    base = str(server.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors = _watch_csp(page)
    await page.goto(f"{base}/?lang=en")
    await _ready(page, "public-map")
    await page.wait_for_function("() => document.querySelectorAll('#public-map img.leaflet-tile-loaded').length > 0")
    assert tile_requests
    assert await page.locator("#public-map .leaflet-control-attribution").text_content() == "Tiles <b>test</b>"
    assert errors == []
    await context.close()


async def test_the_compose_preview_shows_who_the_warning_reaches(browser, base_url, clock):  # noqa: F811
    base, server = base_url
    services = await _demo(server, ("drafter", ["drafter"]))
    district = next(a for a in services.registry.areas if a.level == "district")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await _login(page, base, "drafter", "drafter-password")
    await page.goto(f"{base}/console/compose?lang=en")
    await page.select_option("#areas", [district.code])
    await _fill_texts(page, clock)
    figures = page.locator("#channel-preview section.impact li").first
    await figures.wait_for()
    expected = f"{services.registry.population(district.code):,} residents in the communities alerted"
    assert (await figures.text_content() or "").strip() == expected
    await context.close()


async def _tab_to_coordinates(page, name: str) -> None:
    """From the areas list, with the keyboard only: Tab to "Enter shapes as coordinates", open it
    with Enter, Tab on to the polygons field and, for circles, once more."""
    await page.focus("#areas")
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.matches('#shape-text > summary')")
    await page.keyboard.press("Enter")
    for _ in range(1 if name == "polygons" else 2):
        await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.name") == name


async def test_keyboard_only_a_typed_circle_is_drawn_and_reaches_the_cap(browser, base_url, clock):  # noqa: F811
    """A drafter with coordinates from the gas company ("31.23,121.47 within 2 km") types them:
    leaving the field draws the circle, Enter in a text field submits, the CAP carries the circle."""
    base, server = base_url
    services = await _demo(server, ("drafter", ["drafter"]))
    community = [a for a in services.registry.areas if a.level == "community"][0]
    lat, lon = community.point
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors = _watch_csp(page)
    await _login(page, base, "drafter", "drafter-password")
    await page.goto(f"{base}/console/compose?lang=en")
    await _ready(page, "compose-map")
    await _fill_texts(page, clock)
    await _tab_to_coordinates(page, "circles")
    await page.keyboard.type(f"{lat},{lon} 1.25")
    await page.keyboard.press("Tab")  # leaving the field draws the circle
    radius = page.locator("#shape-list li[data-shape=circle] input[data-radius-of='0']")
    await radius.wait_for()
    assert await radius.input_value() == "1.25"
    drawn = await page.evaluate(
        """() => { const out = []; window.warncastMaps['compose-map'].map.eachLayer(l => {
             if (l instanceof L.Circle) out.push([l.getLatLng().lat, l.getLatLng().lng, l.getRadius()]); });
             return out; }"""
    )
    assert drawn == [[lat, lon, 1250]]
    assert await page.text_content("#circles-error") == ""
    await page.focus("input[name='en.headline']")
    await page.keyboard.press("Enter")  # the form's first submit button: save and submit for approval
    await page.wait_for_url("**/console/warnings/*")
    message_id = page.url.split("/console/warnings/", 1)[1].split("?")[0]
    assert errors == []
    await context.close()

    root = await _approved_cap(services, message_id)
    circles = [c.text for c in root.find("cap:info", NS).findall("cap:area/cap:circle", NS)]
    assert len(circles) == 1
    point, radius_km = circles[0].split(" ")
    assert [float(x) for x in point.split(",")] == [lat, lon]
    assert abs(float(radius_km) - 1.25) <= 1.25 * 0.01


async def test_keyboard_only_a_typed_crossed_polygon_is_refused_with_the_field_error(browser, base_url, clock):  # noqa: F811
    base, server = base_url
    services = await _demo(server, ("drafter", ["drafter"]))
    district = next(a for a in services.registry.areas if a.level == "district")
    lat, lon = district.point
    d = 0.01
    bow_tie = f"{lat},{lon} {lat + d},{lon + d} {lat + d},{lon} {lat},{lon + d} {lat},{lon}"
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors = _watch_csp(page)
    await _login(page, base, "drafter", "drafter-password")
    await page.goto(f"{base}/console/compose?lang=en")
    await _ready(page, "compose-map")
    await _fill_texts(page, clock)
    await _tab_to_coordinates(page, "polygons")
    await page.keyboard.type(bow_tie)
    await page.keyboard.press("Tab")
    problem = page.locator("#polygons-error")
    await page.wait_for_function("() => document.getElementById('polygons-error').textContent !== ''")
    assert (await problem.text_content()).startswith("Line 1: The polygon is not valid: its edges cross near")
    assert await page.get_attribute("#polygons-text", "aria-invalid") == "true"
    assert await page.input_value("#polygons-text") == bow_tie  # kept as typed, not drawn
    assert await page.locator("#shape-list li").count() == 0
    # Submitted anyway: the server refuses it with the same words, the text still in the field.
    await page.focus("input[name='en.headline']")
    await page.keyboard.press("Enter")
    await page.wait_for_load_state("load")
    assert "/console/compose" in page.url
    await page.locator("#polygons-error span").wait_for()
    assert (await problem.text_content()).startswith("Line 1: The polygon is not valid: its edges cross near")
    assert await page.input_value("#polygons-text") == bow_tie
    assert await services.warnings.list(limit=10) == []
    # Corrected from the keyboard: the error goes, the polygon is drawn.
    await _ready(page, "compose-map")
    await page.focus("#polygons-text")
    await page.keyboard.press("Control+A")
    await page.keyboard.type(f"{lat},{lon} {lat + d},{lon} {lat + d},{lon + d} {lat},{lon}")
    await page.keyboard.press("Tab")
    await page.locator("#shape-list li[data-shape=polygon]").wait_for()
    assert await problem.text_content() == ""
    assert await page.get_attribute("#polygons-text", "aria-invalid") is None
    assert errors == []
    await context.close()
