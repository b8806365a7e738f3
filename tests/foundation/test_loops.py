"""The event loop warncast runs on: uvloop unless asked for asyncio's own."""

from __future__ import annotations

import asyncio

import uvloop

from foundation import loops


def test_uvloop_by_default_and_asyncio_on_request(monkeypatch):
    monkeypatch.delenv("WARNCAST_EVENT_LOOP", raising=False)
    loop = loops.new_event_loop()
    assert isinstance(loop, uvloop.Loop)
    loop.close()
    monkeypatch.setenv("WARNCAST_EVENT_LOOP", "asyncio")
    loop = loops.new_event_loop()
    assert not isinstance(loop, uvloop.Loop) and isinstance(loop, asyncio.AbstractEventLoop)
    loop.close()


def test_run_returns_the_coroutines_result(monkeypatch):
    monkeypatch.delenv("WARNCAST_EVENT_LOOP", raising=False)

    async def answer() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert loops.run(answer()).startswith("uvloop")
