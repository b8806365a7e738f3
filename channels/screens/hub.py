"""The live hub: server-sent events to every connected screen of this process.

One reader per process follows the warnings stream (`EventFollower`); on each event the hub
renders the state of each screen that has connections (once per screen, from the shared cache) and
queues it to those connections whose last state differs. No connection holds Redis: two thousand
screens cost two thousand small in-memory queues, not two thousand Redis clients.

When the reader loses Redis the hub sends each live screen its last state marked stale (the kiosk
keeps showing the last known warnings and says the connection is lost), and when it is back, the
current state: a screen never goes blank because Redis blinked.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from channels.cache import Rendering, redis_away
from channels.screens import ScreenOutputs
from channels.screens.registry import Screen
from foundation.supervisor import beat

log = logging.getLogger(__name__)
TICK_SECONDS = 5.0  # between re-checks
CLOSE = b""  # queued to end a stream (shutdown, screen deleted)


@dataclass(eq=False)
class Connection:
    screen: Screen
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(maxsize=8))
    sent_etag: str = ""

    def offer(self, rendering: Rendering, event_id: str) -> bool:
        if rendering.etag == self.sent_etag:
            return False
        self.sent_etag = rendering.etag
        self.put(sse_event("state", rendering.body, event_id))
        return True

    def put(self, payload: bytes) -> None:
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:  # a stalled client: drop its backlog, the newest state is all it needs
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(payload)


def sse_event(name: str, data: bytes, event_id: str = "") -> bytes:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id else "")
    lines = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))
    return head.encode() + lines + b"\n"


class ScreenHub:
    def __init__(self, outputs: ScreenOutputs) -> None:
        self.outputs = outputs
        self.connections: dict[str, set[Connection]] = {}
        self.delivered = 0  # events queued to connections (benchmarks read it)
        self._away_logged = False
        outputs.follower.watch(self.on_link)

    def connect(self, screen: Screen) -> Connection:
        conn = Connection(screen)
        self.connections.setdefault(screen.id, set()).add(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        peers = self.connections.get(conn.screen.id)
        if peers is not None:
            peers.discard(conn)
            if not peers:
                del self.connections[conn.screen.id]

    def count(self) -> int:
        return sum(len(peers) for peers in self.connections.values())

    async def on_event(self, event_id: str, fields: dict[str, str]) -> None:
        await self.refresh(event_id)

    async def on_link(self, live: bool) -> None:
        """The warnings follower lost Redis (screens get their last state, stale) or has it back."""
        cache = self.outputs.cache
        if live:
            cache.note_back()
        else:
            cache.note_away()
        if not self.connections:
            return
        try:
            await self.refresh()
        except Exception as exc:
            if not redis_away(exc):
                raise

    async def refresh(self, event_id: str = "") -> None:
        """Send each connected screen its state if it changed (also run on expiry ticks); while
        Redis is away, its last state marked stale."""
        screens = await self.outputs.screens()
        for screen_id, peers in list(self.connections.items()):
            current = screens.get(screen_id)
            if current is None:  # deleted: end its streams
                for conn in peers:
                    conn.put(CLOSE)
                continue
            try:
                rendering = await self.outputs.state(current)
            except Exception as exc:
                if not redis_away(exc):
                    raise
                continue  # never rendered before Redis went away: its connections keep what they have
            for conn in list(peers):
                conn.screen = current  # an edited record applies to open streams too
                self.delivered += conn.offer(rendering, event_id)

    def close_all(self) -> None:
        for peers in self.connections.values():
            for conn in peers:
                conn.put(CLOSE)

    async def tick(self, interval: float = TICK_SECONDS) -> None:
        """Re-check every few seconds: a warning's expiry clears screens even before the scheduler's
        event, and area changes from another process reach this one's renderings. Reports in to the
        supervisor after each re-check; a failure is raised to it (once the screens have their last
        state), so that it shows in the loop's health, and the supervisor runs this again."""
        ctx = self.outputs.ctx
        while True:
            await asyncio.sleep(interval)
            away: Exception | None = None
            try:
                await ctx.registry.refresh(ctx.redis)
            except Exception as exc:
                if not redis_away(exc):
                    raise
                self.outputs.cache.note_away()
                if not self._away_logged:
                    log.warning("screens show their last state while redis is away: %r", exc)
                self._away_logged = True
                away = exc
            else:
                self._away_logged = False
            await self.refresh()
            if away is not None:
                raise away
            beat()
