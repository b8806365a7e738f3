"""Bodies are limited while they stream: a chunked body (no Content-Length) is counted part by part
and byte by byte, and the first part over a limit stops the read, on every endpoint that reads one."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from tests.citizen_report.test_reports import BODY, queued

MIB = 1024 * 1024
BOUNDARY = "wcboundary"


async def chunked_multipart(photos: int, photo_bytes: int, sent: list[int], end: bool = True) -> AsyncIterator[bytes]:
    """A multipart body without Content-Length: the report's fields, then `photos` file parts of
    `photo_bytes` each; the same chunk object is sent again and again, so the sender holds ~1 MiB."""
    for name, value in BODY.items():
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    chunk = b"\xff" * MIB
    for index in range(photos):
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photos"; filename="{index}.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        sent.append(index)
        for _ in range(photo_bytes // MIB):
            yield chunk
        yield b"\r\n"
    if end:
        yield f"--{BOUNDARY}--\r\n".encode()


async def test_a_chunked_25_photo_upload_is_refused_at_the_fourth_with_memory_bounded(client, services):
    """25 parts of 8 MiB took ~200 MB before a 422; now the fourth photo's first bytes end the read."""
    sent: list[int] = []
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        resp = await client.post(
            "/api/v1/reports?lang=en",
            data=chunked_multipart(25, 8 * MIB, sent),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        body = await resp.json()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert resp.status == 422, body
    assert body["error"]["fields"] == [{"field": "photos", "code": "too_many", "message": "Attach at most 3 photos."}]
    # Three photos of 8 MiB are held (and one joined copy at a time), never the 25.
    assert peak < 48 * MIB, f"the request grew traced memory by {peak / MIB:.0f} MiB"
    assert await queued(services) == []


async def test_a_chunked_body_over_the_total_is_refused_while_it_streams(client, services):
    """Photos under the per-photo limit but more bytes than the form may hold in all: 413, counted
    as the bytes arrive (the limit used to be checked only against Content-Length)."""
    services.reports.config = services.reports.config.__class__(max_photos=3, max_photo_bytes=2 * MIB)
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        async for chunk in chunked_multipart(3, 2 * MIB, sent, end=False):
            yield chunk
        for index in range(300):  # then text parts: each small, together over the rest of the budget
            text = "x" * 15000
            yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="t{index}"\r\n\r\n{text}\r\n'.encode()

    resp = await client.post(
        "/api/v1/reports", data=body(), headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    )
    assert resp.status in (400, 413), await resp.text()
    assert await queued(services) == []


async def oversized(size: int) -> AsyncIterator[bytes]:
    chunk = b"a" * 65536
    for _ in range(size // len(chunk)):
        yield chunk


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.mark.parametrize(
    ("path", "content_type", "who"),
    [
        ("/open311/v2/requests.json", FORM, None),
        ("/open311/v2/requests.xml", MULTIPART, None),
        ("/webhooks/twilio/sms", FORM, None),
        ("/webhooks/twilio/status", FORM, None),
        ("/api/v1/monitoring/readings", JSON, "sensor"),
        ("/api/v1/monitoring/alerts", "application/cap+xml", "sensor"),
        ("/api/v1/warnings", JSON, "drafter"),
        ("/api/v1/reports", JSON, None),
        ("/report", FORM, None),
        ("/console/login", FORM, None),
    ],
)
async def test_every_body_reader_stops_at_its_limit(client, services, staff, path, content_type, who):
    """A chunked 8 MiB body to any endpoint that reads one is refused with 413 before it is held."""
    headers = {"Content-Type": content_type, **(staff[who] if who else {})}
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        resp = await client.post(path, data=oversized(8 * MIB), headers=headers)
        await resp.read()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert resp.status in (400, 413), (path, resp.status)  # 400: no boundary in the first line's limit
    assert peak < 4 * MIB, f"{path} grew traced memory by {peak / MIB:.1f} MiB"
