"""A local stand-in for the DingTalk (钉钉) custom robot webhook with signed requests ("加签").

    POST /robot/send?access_token=TOKEN&timestamp=MS&sign=SIGN  {"msgtype": "text", "text": {"content"}}
    sign = urlencode(base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret))), the timestamp in
    milliseconds and within an hour of now.
    -> {"errcode": 0, "errmsg": "ok"}; 310000 "sign not match" (or a timestamp too far off);
       300001 "token is not exist" for an unknown or removed robot; 130101 "send too fast, exceed 20
       times per minute"; 410100 when the robot is throttled.
The signature is checked here with the documented recipe, independently of warncast's code.
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
    "rate_limited": (130101, "send too fast, exceed 20 times per minute"),
    "throttled": (410100, "send too fast"),
    "removed": (300001, "token is not exist"),
    "busy": (-1, "system busy"),
}


def expected_sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkStandIn(RobotStandIn):
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/robot/send", self.send)

    def text_of(self, body: dict[str, Any]) -> str:
        return str(body.get("text", {}).get("content", ""))

    async def send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        body = await request.json()
        if token not in self.robots:
            return self._error("removed")
        secret = self.robots[token]
        if secret:
            stamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
            # aiohttp has already decoded the query once: the sign arrives as the base64 text.
            fresh = stamp.isdigit() and abs(time.time() * 1000 - int(stamp)) < 3_600_000
            if not fresh or not hmac.compare_digest(sign, expected_sign(secret, stamp)):
                return web.json_response({"errcode": 310000, "errmsg": "sign not match, more: [standin]"})
        if failure := self.planned_failure():
            return self._error(failure)
        self.posts.append(Post(token, body, dict(request.query)))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _error(self, kind: str) -> web.Response:
        code, message = CODES[kind]
        return web.json_response({"errcode": code, "errmsg": message})
