"""Renderers measure a warning's remaining validity by the process's clock (ChannelContext.now, the
clock the workflow publishes by), never by the wall clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.publisher.test_wording import TZ, message


async def test_message_ttl_follows_the_injected_clock(services: Any, clock: Any) -> None:
    msg = message(expires=datetime(2030, 7, 1, 18, 0, tzinfo=TZ))
    clock.now = datetime(2030, 7, 1, 16, 0, tzinfo=TZ)  # years from the wall clock's now
    assert services.channel_context.now() == clock.now
    sms, telegram = services.channels["sms"], services.channels["telegram"]
    assert (await sms.render(msg, "en")).ttl == 7200
    assert (await telegram.render(msg, "zh_Hans")).ttl == 7200
    clock.advance(minutes=90)
    assert (await sms.render(msg, "zh_Hans")).ttl == 1800
    assert (await telegram.render(msg, "en")).ttl == 1800
    clock.advance(hours=3)  # past its expiry: the shortest validity a provider takes
    assert (await sms.render(msg, "en")).ttl == (await telegram.render(msg, "en")).ttl == 60
