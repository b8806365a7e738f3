"""A TCP proxy in front of a real redis-server that can lose one reply: the command reaches Redis
and is carried out, but its answer never reaches the client, whose connection is closed instead.
That is what a client sees when Redis (or the network) fails between doing a write and answering it."""

from __future__ import annotations

import asyncio
import contextlib

from tests.redis_cluster import free_port


class LossyProxy:
    """Forwards 127.0.0.1:`port` to `target_port`; `lose_reply_to(marker)` arms it to drop the reply to
    the first client chunk that contains `marker` (once)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.lost = 0  # replies dropped so far
        self._marker: bytes | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def lose_reply_to(self, marker: bytes) -> None:
        self._marker = marker

    async def __aenter__(self) -> LossyProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        replies = asyncio.create_task(self._pipe(server_in, client_out))
        try:
            while chunk := await client_in.read(65536):
                if self._marker is not None and self._marker in chunk:
                    self._marker = None
                    replies.cancel()  # nothing more reaches the client from this connection
                    await asyncio.gather(replies, return_exceptions=True)
                    server_out.write(chunk)
                    await server_out.drain()
                    await server_in.read(65536)  # Redis has carried it out and answered
                    self.lost += 1
                    break
                server_out.write(chunk)
                await server_out.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            replies.cancel()
            for writer in (client_out, server_out):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
