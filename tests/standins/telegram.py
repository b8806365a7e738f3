"""A local Telegram Bot API stand-in: answers like https://api.telegram.org for the methods warncast
uses, records every call, and fails on demand.

    async with TelegramStandin() as api:            # or the `telegram_api` fixture in a test file
        bot = Bot(api.token, base_url=f"{api.url}/bot")
        api.fail_next("429", times=2)               # the next two calls get flood control
        api.fail_chat(555, "403")                   # every call about chat 555: bot blocked
        api.add_file("ph1", jpeg_bytes)             # getFile + GET /file/bot<token>/<path> serve it

Standalone, for benchmarks: `python -m tests.standins.telegram --port 0` prints the port;
`GET /_standin/stats` then reports messages, distinct chats and duplicates.

Wire format (see research/channel_facts.md §3): `POST /bot<token>/<method>`, form-encoded (or JSON)
parameters whose non-string values are JSON-encoded; answers `{"ok": true, "result": ...}`, errors
`{"ok": false, "error_code", "description", "parameters"?}` with the same HTTP status.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Warncast", "username": "warncast_test_bot"}
# Parameters the Bot API takes as plain strings; every other value is JSON-encoded by clients.
STRING_PARAMS = {
    "text",
    "parse_mode",
    "url",
    "secret_token",
    "callback_query_id",
    "inline_message_id",
    "ip_address",
    "caption",
    "file_id",
}
FAILURES: dict[str, tuple[int, str]] = {
    "429": (429, "Too Many Requests: retry after %(retry_after)s"),
    "403": (403, "Forbidden: bot was blocked by the user"),
    "400": (400, "Bad Request: chat not found"),
    "500": (500, "Internal Server Error"),
}
KINDS = (*FAILURES, "hang")


@dataclass
class Call:
    """One request the stand-in received, and what it answered."""

    method: str
    params: dict[str, Any]
    status: int = 0  # the HTTP status answered; 0 while unanswered (a hang)
    at: float = field(default_factory=time.monotonic)

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    @property
    def text(self) -> str | None:
        return self.params.get("text")

    @property
    def parse_mode(self) -> str | None:
        return self.params.get("parse_mode")

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.params.get("reply_markup")

    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


class TelegramStandin:
    def __init__(
        self, token: str = "123:ABC", *, retry_after: int = 2, hang_seconds: float = 30.0, record: bool = True
    ) -> None:
        self.token = token
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.record = record  # benchmarks turn the call list off and keep the counts
        self.calls: list[Call] = []
        self.delivered: Counter[str] = Counter()  # successful sendMessage per chat id
        self._fail_next: list[str] = []
        self._fail_chats: dict[str, str] = {}
        self._message_ids = itertools.count(1)
        self.files: dict[str, bytes] = {}  # file_id -> content, for getFile and downloads
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- control -----------------------------------------------------------------------------

    def fail_next(self, kind: str, times: int = 1) -> None:
        """The next `times` calls (any method) fail with `kind`: 429, 403, 400, 500 or hang."""
        assert kind in KINDS, kind
        self._fail_next.extend([kind] * times)

    def fail_chat(self, chat_id: int | str, kind: str | None) -> None:
        """Every call about `chat_id` fails with `kind` until called again with None."""
        assert kind is None or kind in KINDS, kind
        if kind is None:
            self._fail_chats.pop(str(chat_id), None)
        else:
            self._fail_chats[str(chat_id)] = kind

    def add_file(self, file_id: str, data: bytes) -> None:
        """A file residents "uploaded": getFile describes it and the file URL serves it."""
        self.files[file_id] = data

    def reset(self) -> None:
        self.calls.clear()
        self.delivered.clear()
        self._fail_next.clear()
        self._fail_chats.clear()

    def sent(self, chat_id: int | str | None = None, method: str = "sendMessage") -> list[Call]:
        """Successful calls of `method`, optionally only those to one chat."""
        return [
            c
            for c in self.calls
            if c.method == method and c.status == 200 and (chat_id is None or str(c.chat_id) == str(chat_id))
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        app.router.add_get("/_standin/stats", self._stats)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.url

    async def close(self) -> None:
        self._released.set()  # let hanging requests finish so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TelegramStandin:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the API -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        call = Call(method, params)
        if self.record:
            self.calls.append(call)
        if request.match_info["token"] != self.token:
            return _error(call, 401, "Unauthorized")
        kind = self._fail_next.pop(0) if self._fail_next else self._fail_chats.get(str(call.chat_id))
        if kind == "hang":
            try:
                await asyncio.wait_for(self._released.wait(), self.hang_seconds)
            except TimeoutError:
                pass
            return _error(call, 504, "Gateway Timeout")
        if kind is not None:
            status, description = FAILURES[kind]
            extra = {"retry_after": self.retry_after} if kind == "429" else None
            return _error(call, status, description % {"retry_after": self.retry_after}, extra)
        if method == "getFile" and params.get("file_id") not in self.files:
            return _error(call, 400, "Bad Request: invalid file_id")
        answer = getattr(self, f"_api_{method}", None)
        if answer is None:
            return _error(call, 404, "Not Found: method not found")
        call.status = 200
        if method == "sendMessage":
            self.delivered[str(call.chat_id)] += 1
        return web.json_response({"ok": True, "result": answer(params)})

    async def _download(self, request: web.Request) -> web.Response:
        """GET /file/bot<token>/<file_path>: the bytes of a file getFile described."""
        path = request.match_info["path"]
        call = Call("download", {"file_path": path})
        if self.record:
            self.calls.append(call)
        if request.match_info["token"] != self.token:
            call.status = 401
            return web.Response(status=401)
        file_id = path.rsplit("/", 1)[-1]
        if not path.startswith("photos/") or file_id not in self.files:
            call.status = 404
            return web.Response(status=404)
        call.status = 200
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def _stats(self, request: web.Request) -> web.Response:
        """For a benchmark driving a standalone stand-in: how many chats got how many messages."""
        return web.json_response(
            {
                "messages": sum(self.delivered.values()),
                "chats": len(self.delivered),
                "duplicates": sum(n - 1 for n in self.delivered.values() if n > 1),
            }
        )

    def _api_getMe(self, params: dict[str, Any]) -> Any:
        return {
            **BOT_USER,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        return self._message(params, next(self._message_ids))

    def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        return self._message(params, int(params.get("message_id", 0)))

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        return self._message({"text": "", **params}, int(params.get("message_id", 0)))

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    def _api_getFile(self, params: dict[str, Any]) -> Any:
        file_id = params["file_id"]
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(self.files[file_id]),
            "file_path": f"photos/{file_id}",
        }

    def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        return True

    def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    def _message(self, params: dict[str, Any], message_id: int) -> dict[str, Any]:
        chat_id = params.get("chat_id", 0)
        chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": "Resident"}
        if isinstance(chat_id, int) and chat_id < 0:
            chat = {"id": chat_id, "type": "group", "title": "Group"}
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": BOT_USER,
            "text": params.get("text", ""),
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:  # Telegram echoes only inline keyboards
            message["reply_markup"] = markup
        return message


async def _read_params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json()
        return dict(body) if isinstance(body, dict) else {}
    form = await request.post() if request.method == "POST" else request.query
    params: dict[str, Any] = {}
    for name, value in form.items():
        if not isinstance(value, str) or name in STRING_PARAMS:
            params[name] = value
            continue
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value  # e.g. chat_id "@channelname"
    return params


def _error(call: Call, status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    call.status = status
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Telegram Bot API stand-in (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default="123:ABC")
    args = parser.parse_args()

    async def serve() -> None:
        standin = TelegramStandin(args.token, record=False)
        await standin.start(args.port)
        print(standin.port, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await standin.close()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
