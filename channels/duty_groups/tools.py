"""The three group-robot webhook APIs: where to post, how to sign, what their answers mean.

    WeCom (企业微信) group robot   POST {base}/cgi-bin/webhook/send?key=KEY
        {"msgtype": "text", "text": {"content": ...}} -> {"errcode": 0, "errmsg": "ok"}
    DingTalk (钉钉) custom robot   POST {base}/robot/send?access_token=TOKEN[&timestamp=MS&sign=SIGN]
        sign = urlencode(base64(HMAC-SHA256(key=secret, msg="{timestamp}\\n{secret}"))), timestamp in ms
        {"msgtype": "text", "text": {"content": ...}} -> {"errcode": 0, "errmsg": "ok"}
    Feishu/Lark (飞书) custom bot  POST {base}/open-apis/bot/v2/hook/TOKEN
        {"timestamp": "S", "sign": SIGN, "msg_type": "text", "content": {"text": ...}} -> {"code": 0}
        sign = base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg=b"")), timestamp in seconds

All three answer HTTP 200 with an error code in the body. The codes warncast acts on (the tools'
documented error codes): rate limited (WeCom 45009, DingTalk 130101 and 410100, Feishu 11232) is
retried later; a bad signature or a refused keyword / IP (DingTalk 310000, Feishu 19021, 19022,
19024) is our configuration (an auth error, held for an operator); the robot removed or its key
unknown (WeCom 93000, DingTalk 300001 and 400013, Feishu 19001) stops posting to that group.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from foundation.settings import Settings
from publisher.dispatch.channel import AuthError, ChannelError, PermanentError, TemporaryError

WECOM, DINGTALK, FEISHU = "wecom", "dingtalk", "feishu"
TOOLS = (WECOM, DINGTALK, FEISHU)
# Each tool allows a robot 20 messages a minute (WeCom, DingTalk) or 100 a minute and 5 a second
# (Feishu); the channel posts to one group at most every WARNCAST_DUTY_GROUP_INTERVAL_MS (3 s).
MAX_TEXT = {WECOM: 2048, DINGTALK: 5000, FEISHU: 4000}  # characters one text message may carry

RATE_LIMITED = {WECOM: {45009}, DINGTALK: {130101, 410100}, FEISHU: {11232}}
BAD_SIGNATURE = {WECOM: set(), DINGTALK: {310000}, FEISHU: {19021, 19022, 19024}}
REMOVED = {WECOM: {93000}, DINGTALK: {300001, 400013}, FEISHU: {19001}}
BUSY = {WECOM: {-1}, DINGTALK: {-1}, FEISHU: {9499}}


@dataclass(frozen=True)
class Request:
    url: str
    body: dict[str, Any]


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp: int) -> str:
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def build_request(tool: str, settings: Settings, token: str, secret: str, text: str, now: float) -> Request:
    text = text[: MAX_TEXT[tool]]
    if tool == WECOM:
        url = f"{settings.wecom_api_base}/cgi-bin/webhook/send?key={quote_plus(token)}"
        return Request(url, {"msgtype": "text", "text": {"content": text}})
    if tool == DINGTALK:
        url = f"{settings.dingtalk_api_base}/robot/send?access_token={quote_plus(token)}"
        if secret:
            stamp = int(now * 1000)
            url += f"&timestamp={stamp}&sign={dingtalk_sign(secret, stamp)}"
        return Request(url, {"msgtype": "text", "text": {"content": text}})
    url = f"{settings.feishu_api_base}/open-apis/bot/v2/hook/{quote_plus(token)}"
    body: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
    if secret:
        stamp = int(now)
        body.update(timestamp=str(stamp), sign=feishu_sign(secret, stamp))
    return Request(url, body)


def result_code(tool: str, answer: Any) -> tuple[int, str]:
    """The tool's code and message from its JSON answer (Feishu's older bots say StatusCode)."""
    if not isinstance(answer, dict):
        return -1, "not a JSON object"
    if tool == FEISHU:
        code = answer.get("code", answer.get("StatusCode", -1))
        return int(code) if isinstance(code, int) else -1, str(answer.get("msg", answer.get("StatusMessage", "")))
    code = answer.get("errcode", -1)
    return int(code) if isinstance(code, int) else -1, str(answer.get("errmsg", ""))


def classify(tool: str, group: str, code: int, message: str) -> ChannelError:
    """The failure a non-zero code is, for the dispatch to retry, hold or stop."""
    text = f"{tool} robot {group}: {code} {message[:200]}"
    if code in RATE_LIMITED[tool]:
        return TemporaryError(text, code=f"{tool}_{code}")  # the back-off policy spaces the retries
    if code in BUSY[tool]:
        return TemporaryError(text, code=f"{tool}_{code}")
    if code in BAD_SIGNATURE[tool]:
        return AuthError(text, code=f"{tool}_{code}")
    if code in REMOVED[tool]:
        return PermanentError(text, code="removed")
    return PermanentError(text, code=f"{tool}_{code}")
