"""A person in a real browser (Debian's chromium driven by Playwright): log in, compose, approve
as a second user, and see the warning on the public page; and the public page on a phone."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from playwright.async_api import async_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser():
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield instance
        await instance.close()


@pytest.fixture
async def base_url(aiohttp_server, settings, clock):
    from warncast.web.app import create_app

    server = await aiohttp_server(create_app(settings, clock=clock))
    return str(server.make_url("")).rstrip("/"), server


async def _demo(server, *users: tuple[str, list[str]]):
    from foundation.areas.registry import store_areas
    from warncast.app_keys import SERVICES
    from warncast.demo_city import demo_areas

    services = server.app[SERVICES]
    await store_areas(services.redis, demo_areas())
    await services.registry.refresh(services.redis)
    for name, roles in users:
        await services.accounts.create_user(name, roles, f"{name}-password")
    return services


async def _login(page, base: str, name: str, password: str) -> None:
    await page.goto(f"{base}/console/login?lang=en")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/console")


@pytest.mark.timeout(120)
async def test_compose_approve_and_see_it_public(browser, base_url, clock):
    base, server = base_url
    await _demo(server, ("drafter", ["drafter"]), ("approver", ["approver"]))

    drafter = await browser.new_context()
    page = await drafter.new_page()
    await _login(page, base, "drafter", "drafter-password")
    await page.click("text=Compose a warning")
    await page.select_option("#grade", "yellow")
    await page.select_option("#event", "heat")
    await page.select_option("#areas", ["990103"])
    await page.fill("#expires", (clock.now + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M"))
    await page.fill("input[name='zh-CN.headline']", "高温黄色预警")
    await page.fill("textarea[name='zh-CN.description']", "最高气温将达35℃以上。")
    await page.fill("input[name='en.headline']", "Yellow heat warning <b>now</b>")
    await page.fill("textarea[name='en.description']", "Highs above 35 °C.")
    # The live preview follows the typing, per language, without interpreting markup.
    preview = page.locator("[data-preview-lang=en] [data-out=headline]")
    await preview.wait_for()
    assert await preview.text_content() == "Yellow heat warning <b>now</b>"
    assert await page.locator("[data-preview-lang=zh-CN] [data-out=headline]").text_content() == "高温黄色预警"
    await page.click("button[value=submit]")
    await page.wait_for_url("**/console/warnings/*")
    assert await page.locator("#state").text_content() == "submitted"
    detail_path = page.url.split(base, 1)[1].split("?")[0]
    await drafter.close()

    approver = await browser.new_context()
    page = await approver.new_page()
    await _login(page, base, "approver", "approver-password")
    await page.goto(f"{base}{detail_path}?lang=en")
    await page.fill("input[name=comment] >> nth=0", "Checked with the met office")
    await page.click("#approve")
    await page.wait_for_url(f"**{detail_path}?done=approve")
    assert "The warning is published." in await page.locator("#done").text_content()
    assert await page.locator("#state").text_content() == "published"
    await approver.close()

    public = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = await public.new_page()
    await page.goto(f"{base}/?lang=en")
    card = page.locator(".warning-card").first
    assert "Yellow heat warning <b>now</b>" in await card.locator("h2").text_content()
    # The map colours the district's communities yellow.
    fill = await page.locator("svg path[data-code^='990103']").first.get_attribute("fill")
    assert fill and fill.lower() == "#f2c200"
    # Nothing overflows sideways on a phone.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await public.close()


@pytest.mark.timeout(120)
async def test_file_a_report_with_a_photo_on_a_phone_and_see_it_on_the_board(
    browser, aiohttp_server, settings, clock, tmp_path
):
    """A resident on a phone files a report with a photo (no location permission: the area picker);
    an officer's triage board, open meanwhile, shows it live."""
    from tests.citizen_report.test_reports import gps_jpeg
    from warncast.web.app import create_app

    server = await aiohttp_server(create_app(settings.with_(run_scheduler=True), clock=clock))
    base = str(server.make_url("")).rstrip("/")
    await _demo(server, ("triage", ["triage"]))

    officer = await browser.new_context()
    board = await officer.new_page()
    await _login(board, base, "triage", "triage-password")
    await board.goto(f"{base}/console/triage?lang=en")
    assert "Nothing in the queue matches." in await board.locator("#incident-list").text_content()

    phone = await browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = await phone.new_page()
    await page.goto(f"{base}/report?lang=en")
    await page.click("text=Waterlogged street or underpass")
    await page.select_option("#area", "990101001")
    photo = tmp_path / "street.jpg"
    photo.write_bytes(gps_jpeg())
    await page.set_input_files("#photos", str(photo))
    await page.fill("#description", "Underpass flooded <b>deep</b>, a car is stuck")
    await page.check("#consent")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.click("#send")
    await page.wait_for_url("**/report/*?new=1")
    code = await page.locator("#tracking-code").text_content()
    assert len(code) == 16 and await page.locator("#status").get_attribute("data-status") == "received"
    await phone.close()

    card = board.locator(".incident").first
    await card.wait_for(timeout=15000)
    assert "Underpass flooded <b>deep</b>, a car is stuck" in await card.text_content()
    assert await card.locator(".thumbs img").count() == 1
    natural = await card.locator(".thumbs img").evaluate("img => img.complete && img.naturalWidth")
    assert natural == 64
    await card.locator("button[data-action=verify]").click()
    await board.wait_for_url("**/console/triage*")
    assert "Verified" in await board.locator(".incident .incident-status").first.text_content()
    await officer.close()


@pytest.mark.timeout(120)
async def test_start_a_warning_from_a_template_and_fill_its_blanks(browser, base_url, clock):
    base, server = base_url
    await _demo(server, ("drafter", ["drafter"]))
    context = await browser.new_context()
    page = await context.new_page()
    await _login(page, base, "drafter", "drafter-password")
    await page.goto(f"{base}/console/compose?area=990103&lang=en")
    await page.select_option("#template", "rainstorm-red")
    await page.click("text=Use this template")
    await page.wait_for_url("**template=rainstorm-red**")
    assert await page.input_value("#grade") == "red"
    assert await page.locator("#areas option[value='990103']").evaluate("o => o.selected"), "the area rode along"
    headline = page.locator("input[name='en.headline']")
    assert "{place}" in await headline.input_value()
    await page.click("button[value=submit]")
    await page.wait_for_selector("text=Replace {place} with what it stands for.")
    assert "/console/warnings/" not in page.url, "refused while a blank is left"
    for field in await page.locator("input[name$='.headline'], textarea[name$='.description']").all():
        filled = (await field.input_value()).replace("{place}", "Jiangwan").replace("{value}", "52")
        for name in ("unit", "reading", "time", "sensor"):
            filled = filled.replace("{" + name + "}", "-")
        await field.fill(filled)
    for field in await page.locator("textarea[name$='.instruction']").all():
        await field.fill((await field.input_value()).replace("{place}", "Jiangwan"))
    await page.click("button[value=submit]")
    await page.wait_for_url("**/console/warnings/*")
    assert await page.locator("#state").text_content() == "submitted"
    await context.close()
