"""A kiosk screen in a real browser (Debian's chromium): a published warning appears without a
reload, hostile text stays text, and the screen clears itself when the warning is cancelled."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession

from tests.conftest import warning_body
from tests.warncast.test_browser import ARGS, CHROMIUM, base_url, browser  # noqa: F401 - fixtures

EVIL = '<img src=x onerror="document.title=1"> Red rainstorm'


async def call(session: ClientSession, base: str, token: str, path: str, body: dict) -> dict:
    async with session.post(f"{base}{path}", json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status in (200, 201), await resp.text()
        return await resp.json()


@pytest.mark.timeout(120)
async def test_kiosk_follows_publication_and_cancellation(browser, base_url, clock):  # noqa: F811
    base, server = base_url
    from foundation.areas.registry import store_areas
    from warncast.app_keys import SERVICES
    from warncast.demo_city import demo_areas

    services = server.app[SERVICES]
    await store_areas(services.redis, demo_areas())
    await services.registry.refresh(services.redis)
    tokens = {name: await services.accounts.create_token(name, [name]) for name in ("drafter", "approver", "admin")}

    async with ClientSession() as http:
        await call(
            http,
            base,
            tokens["admin"],
            "/api/v1/screens",
            {"id": "plaza", "name": "Plaza", "area": "990101001001", "languages": ["en", "zh-CN"]},
        )
        context = await browser.new_context(viewport={"width": 1280, "height": 720})
        page = await context.new_page()
        await page.goto(f"{base}/screens/plaza")
        await page.wait_for_selector("body[data-warning-count='0']")
        assert await page.locator("#none").text_content() == "No warnings are in force."
        assert await page.locator("#clock").text_content()

        body = warning_body(clock, grade="blue", areas=["990101"], status="Exercise")
        body["info"]["en"]["headline"] = EVIL
        draft = await call(http, base, tokens["drafter"], "/api/v1/warnings", body)
        await call(http, base, tokens["drafter"], f"/api/v1/warnings/{draft['id']}/submit", {})
        await call(http, base, tokens["approver"], f"/api/v1/warnings/{draft['id']}/approve", {})

        # Without a reload: the stream brings it (in well under a second; the timeout is generous).
        await page.wait_for_selector("body[data-warning-count='1']", timeout=3000)
        assert "grade-blue" in await page.get_attribute("body", "class")
        assert await page.locator("#headline").text_content() == EVIL
        assert await page.locator("#board img").count() == 0 and await page.title() == "Plaza"
        assert "DRILL" in await page.locator("#drill").text_content()
        assert "Stop outdoor activities." in await page.locator("#instruction").text_content()
        # Readable from a distance: the headline is big.
        size = await page.eval_on_selector("#headline", "e => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= 40

        cancel = await call(http, base, tokens["drafter"], f"/api/v1/warnings/{draft['id']}/cancel", {})
        await call(http, base, tokens["approver"], f"/api/v1/warnings/{cancel['id']}/approve", {})
        await page.wait_for_selector("body[data-warning-count='0']", timeout=3000)
        assert "grade-none" in await page.get_attribute("body", "class")
        assert await page.locator("#headline").is_hidden()
        await context.close()
