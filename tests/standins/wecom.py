"""A local stand-in for the WeCom (企业微信) group robot webhook.

    POST /cgi-bin/webhook/send?key=KEY  {"msgtype": "text", "text": {"content": "..."}}
    -> {"errcode": 0, "errmsg": "ok"}; 93000 "invalid webhook url" for an unknown or removed key;
       45009 "api freq out of limit" past 20 messages a minute; 40008 for an unknown msgtype.
Every answer is HTTP 200: the error is in the body.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.standins.robots import Post, RobotStandIn

CODES = {
    "rate_limited": (45009, "api freq out of limit"),
    "removed": (93000, "invalid webhook url"),
    "busy": (-1, "system busy"),
}


class WeComStandIn(RobotStandIn):
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/cgi-bin/webhook/send", self.send)

    def text_of(self, body: dict[str, Any]) -> str:
        return str(body.get("text", {}).get("content", ""))

    async def send(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        body = await request.json()
        failure = self.planned_failure()
        if key not in self.robots:
            failure = "removed"
        if failure:
            code, message = CODES[failure]
            return web.json_response({"errcode": code, "errmsg": f"{message}, hint: [standin]"})
        if body.get("msgtype") != "text" or not self.text_of(body):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        self.posts.append(Post(key, body, dict(request.query)))
        return web.json_response({"errcode": 0, "errmsg": "ok"})
