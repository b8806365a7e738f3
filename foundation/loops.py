"""The event loop every warncast process runs on: uvloop where it is installed (libuv sockets
and callbacks cost a fraction of asyncio's pure-Python ones on a busy worker), else asyncio's.

Benchmarks run their bare baselines on the same loop, so a ratio compares our code, not loops.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("WARNCAST_EVENT_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on our loop."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
