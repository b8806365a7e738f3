"""Operations and the API description."""

from __future__ import annotations

import re
import warnings

from warncast.app_keys import REDIS


async def test_health_and_readiness(client, services):
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["redis"] == "ok"


async def test_readyz_fails_without_redis(client, services):
    import redis.asyncio as aioredis

    original = client.app[REDIS]
    broken = aioredis.from_url("unix:///nonexistent/redis.sock")
    with warnings.catch_warnings():  # swapping a started app's Redis is a test's business only
        warnings.simplefilter("ignore", DeprecationWarning)
        client.app[REDIS] = broken
    try:
        resp = await client.get("/readyz")
        assert resp.status == 503
    finally:
        await broken.aclose()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.app[REDIS] = original


async def test_openapi_describes_every_api_route(client, services):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if path.startswith("/api/") and route.method != "HEAD":
            served.add((route.method, re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)))
    assert served == documented


async def test_security_headers_and_errors_as_json(client, services):
    resp = await client.get("/")
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    missing = await client.get("/api/v1/nowhere?lang=en")
    assert missing.status == 404 and (await missing.json())["error"]["message"] == "Not found."
    page = await client.get("/nowhere?lang=en")
    assert page.status == 404 and "Not found." in await page.text()
