"""A local stand-in for the Feishu/Lark (飞书) custom bot webhook with signature verification.

POST /open-apis/bot/v2/hook/TOKEN
    {"timestamp": "S", "sign": SIGN, "msg_type": "text", "content": {"text": "..."}}
sign = base64(HMAC-SHA256(key=timestamp + "\\n" + secret, msg="")), the timestamp in seconds and
within an hour of now.
-> {"code": 0, "msg": "success", "data": {}}; 19021 "sign match fail or timestamp is not within
   one hour from current time"; 19001 "param invalid: incoming webhook access token invalid" for
   an unknown or removed bot; 11232 "frequency limited" past the bot's rate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from aiohttp import web

from tests.standins.robots import Post, RobotStandIn

CODES = {
    "rate_limited": (11232, "frequency limited psm[lark.oapi.app_platform_runtime]appID[0]"),
    "removed": (19001, "param invalid: incoming webhook access token invalid"),
    "busy": (9499, "Bad Request"),
}


def expected_sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FeishuStandIn(RobotStandIn):
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/open-apis/bot/v2/hook/{token}", self.send)

    def text_of(self, body: dict[str, Any]) -> str:
        return str(body.get("content", {}).get("text", ""))

    async def send(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await request.json()
        if token not in self.robots:
            return self._error("removed")
        secret = self.robots[token]
        if secret:
            stamp, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
            fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < 3600
            if not fresh or not hmac.compare_digest(sign, expected_sign(secret, stamp)):
                return web.json_response(
                    {
                        "code": 19021,
                        "data": {},
                        "msg": "sign match fail or timestamp is not within one hour from current time",
                    }
                )
        if failure := self.planned_failure():
            return self._error(failure)
        self.posts.append(Post(token, body, dict(request.query)))
        return web.json_response({"code": 0, "data": {}, "msg": "success"})

    def _error(self, kind: str) -> web.Response:
        code, message = CODES[kind]
        return web.json_response({"code": code, "data": {}, "msg": message})
