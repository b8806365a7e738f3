"""One frozen Settings object, built once from the environment, failing fast on bad values."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None  # None: start the embedded redis-server
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    secret_key: str = ""
    timezone: str = "Asia/Shanghai"
    # CAP sender and the 14-digit GB/T 35965.1 prefix: 6-digit area code, 3-digit sector,
    # 3 + 2 digit unit codes of the release office.
    sender: str = "warncast@lanjiang.example"
    sender_name: str = "澜江市预警信息发布中心 / Lanjiang Warning Release Centre"
    id_prefix: str = "99010000000100"
    languages: tuple[str, ...] = ("zh-CN", "en")
    session_hours: int = 8
    log_json: bool = True
    run_scheduler: bool = True

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("WARNCAST_DATA_DIR", "var"))
        port = _int(env, "WARNCAST_PORT", 8080, 1, 65535)
        host = env.get("WARNCAST_HOST", "127.0.0.1")
        public_url = env.get("WARNCAST_PUBLIC_URL", f"http://{host}:{port}").rstrip("/")
        if not public_url.startswith(("http://", "https://")):
            raise SettingsError(f"WARNCAST_PUBLIC_URL must start with http:// or https://, got {public_url!r}")
        timezone = env.get("WARNCAST_TIMEZONE", "Asia/Shanghai")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"WARNCAST_TIMEZONE: unknown time zone {timezone!r}") from exc
        id_prefix = env.get("WARNCAST_ID_PREFIX", "99010000000100")
        if len(id_prefix) != 14 or not id_prefix.isdigit():
            raise SettingsError("WARNCAST_ID_PREFIX must be 14 digits (area 6, sector 3, unit 3+2)")
        sender = env.get("WARNCAST_SENDER", "warncast@lanjiang.example")
        if any(c in sender for c in " ,<&"):
            raise SettingsError("WARNCAST_SENDER must not contain spaces, commas, '<' or '&' (CAP 1.2)")
        return cls(
            redis_url=env.get("REDIS_URL") or None,
            data_dir=data_dir,
            host=host,
            port=port,
            public_url=public_url,
            secret_key=env.get("WARNCAST_SECRET_KEY") or _stored_secret(data_dir),
            timezone=timezone,
            sender=sender,
            sender_name=env.get("WARNCAST_SENDER_NAME", cls.sender_name),
            id_prefix=id_prefix,
            session_hours=_int(env, "WARNCAST_SESSION_HOURS", 8, 1, 24 * 7),
            log_json=env.get("WARNCAST_LOG_FORMAT", "json") != "text",
        )


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _stored_secret(data_dir: Path) -> str:
    """Without WARNCAST_SECRET_KEY, keep one random key in the data dir so restarts agree."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
