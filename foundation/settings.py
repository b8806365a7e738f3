"""One frozen Settings object, built once from the environment, failing fast on bad values."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None  # None (and no sentinels): start the embedded redis-server
    redis_mode: str = "auto"  # auto | standalone | cluster (REDIS_URL's kind; auto asks INFO cluster)
    redis_sentinels: tuple[tuple[str, int], ...] = ()  # (host, port) of each Sentinel
    redis_sentinel_master: str = ""  # the Sentinel service name of the primary
    # Sentinel mode's credentials and TLS (REDIS_URL carries its own: redis://user:password@…, rediss://)
    redis_username: str = ""  # of the primary and replicas
    redis_password: str = ""
    redis_sentinel_password: str = ""  # of the Sentinels themselves (Redis 6.2: no user name there)
    redis_tls: bool = False  # TLS to the Sentinels and the primary
    redis_min_replicas: int | None = None  # replicas a durable write waits for; None: decided at start
    redis_fsync: str = "always"  # the embedded server's appendfsync: always | everysec
    redis_timeout: float = 2.0  # seconds: socket and connect timeout of every Redis call
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
    # XML signatures of CAP: our key (files; empty: generated into the data dir), and upstream CAP's
    # trusted certificates (a PEM bundle) with whether unsigned or badly signed alerts are refused.
    cap_signing_key: str = ""
    cap_signing_cert: str = ""
    cap_trusted_certs: str = ""
    cap_require_signed: bool = False
    languages: tuple[str, ...] = ("zh-CN", "en")
    session_hours: int = 8
    password_memory_kib: int = 65536  # Argon2id memory cost
    log_json: bool = True
    run_scheduler: bool = True
    # Delivery. Without credentials a channel runs in outbox mode.
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    # The number residents text (REPORT…, JOIN…) as the pages show it; empty: TWILIO_FROM's, else none shown.
    sms_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    telegram_bot_token: str = ""
    telegram_api_base: str = "https://api.telegram.org"
    telegram_webhook_secret: str = ""
    sms_max_segments: int = 3
    sms_rate: float = 10.0  # message segments per second, all workers together
    telegram_rate: float = 30.0  # messages per second, all workers together
    # Duty-group robots (channels/duty_groups): each tool's webhook host; tests point them at stand-ins.
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    dingtalk_api_base: str = "https://oapi.dingtalk.com"
    feishu_api_base: str = "https://open.feishu.cn"
    # At most one post per group this often: inside WeCom's and DingTalk's 20 a minute per robot.
    duty_group_interval_ms: int = 3000
    dispatch_concurrency: int = 64  # sends in flight per worker
    provider_timeout: float = 10.0  # seconds for one provider API call
    dispatch_max_attempts: int = 5
    thread_messages_per_hour: int = 4  # at most this many messages of one warning per recipient an hour
    dispatch_backoff: float = 2.0  # seconds; doubles per attempt, with jitter
    dispatch_reclaim_after: float = 10.0  # seconds a segment may sit unacknowledged by a dead worker
    # Days a warning's delivery records (per-recipient state, recipients, stats, dead letters, outbox)
    # outlive the warning, and the monitoring queue's and reporter notifications' stream entries last;
    # the warnings, reports and audit log are the record, kept (foundation/store/keys.py).
    delivery_retention_days: int = 7
    run_workers: bool = True  # dispatch workers inside `warncast serve`
    processes: int = 1  # `warncast serve` processes on this host (warncast/processes.py); 1: no supervisor
    # Reverse proxies whose X-Forwarded-For is believed (publisher/web/requests.py: client_ip).
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    # Networks partner webhooks may post to although not public (channels/partners/addresses.py).
    partner_allow_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    # Public reads, per process (publisher/web/limits.py): a token bucket per client address.
    public_rate: float = 20.0  # requests per second per client address, sustained
    public_burst: int = 60  # requests a client address may send at once
    public_max_ips: int = 50_000  # client addresses remembered; the stalest is forgotten first
    auth_failure_burst: int = 10  # wrong API tokens an address may send at once (then 1 per 5 s)
    sse_per_ip: int = 50  # live screen streams open at once per client address
    # Raster tiles under the maps ({z}/{x}/{y} URL template, https only); empty: the maps draw only the
    # registry's own polygons and no request leaves the server's origin.
    map_tiles: str = ""
    map_tiles_attribution: str = ""  # the credit the tile provider asks for, shown as text on the maps

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def with_(self, **changes: Any) -> Settings:  # each a field's value, of that field's type
        return replace(self, **changes)

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
        redis_url, sentinels, sentinel_master = _redis_location(env)
        min_replicas = _optional_int(env, "WARNCAST_REDIS_MIN_REPLICAS", 0, 16)
        if min_replicas and redis_url is None and not sentinels:
            raise SettingsError(
                "WARNCAST_REDIS_MIN_REPLICAS needs REDIS_URL or Sentinels: the embedded Redis has no replicas"
            )
        return cls(
            redis_url=redis_url,
            redis_mode=_choice(env, "WARNCAST_REDIS_MODE", ("auto", "standalone", "cluster")),
            redis_sentinels=sentinels,
            redis_sentinel_master=sentinel_master,
            redis_username=env.get("WARNCAST_REDIS_USERNAME", ""),
            redis_password=env.get("WARNCAST_REDIS_PASSWORD", ""),
            redis_sentinel_password=env.get("WARNCAST_REDIS_SENTINEL_PASSWORD", ""),
            redis_tls=_choice(env, "WARNCAST_REDIS_TLS", ("no", "yes")) == "yes",
            redis_min_replicas=min_replicas,
            redis_fsync=_choice(env, "WARNCAST_REDIS_FSYNC", ("always", "everysec")),
            redis_timeout=_float(env, "WARNCAST_REDIS_TIMEOUT", 2.0, low=1.5, high=60.0),
            data_dir=data_dir,
            host=host,
            port=port,
            public_url=public_url,
            secret_key=env.get("WARNCAST_SECRET_KEY") or _stored_secret(data_dir),
            timezone=timezone,
            sender=sender,
            sender_name=env.get("WARNCAST_SENDER_NAME", cls.sender_name),
            id_prefix=id_prefix,
            cap_signing_key=env.get("WARNCAST_CAP_SIGNING_KEY", ""),
            cap_signing_cert=env.get("WARNCAST_CAP_SIGNING_CERT", ""),
            cap_trusted_certs=env.get("WARNCAST_CAP_TRUSTED_CERTS", ""),
            cap_require_signed=_choice(env, "WARNCAST_CAP_REQUIRE_SIGNED", ("no", "yes")) == "yes",
            session_hours=_int(env, "WARNCAST_SESSION_HOURS", 8, 1, 24 * 7),
            password_memory_kib=_int(env, "WARNCAST_PASSWORD_MEMORY_KIB", 65536, 8192, 4 * 1024 * 1024),
            log_json=env.get("WARNCAST_LOG_FORMAT", "json") != "text",
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            twilio_from=env.get("TWILIO_FROM", ""),
            sms_number=env.get("WARNCAST_SMS_NUMBER", "").strip() or env.get("TWILIO_FROM", "").strip(),
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID", ""),
            twilio_api_base=env.get("TWILIO_API_BASE", "https://api.twilio.com").rstrip("/"),
            telegram_bot_token=env.get("TELEGRAM_BOT_TOKEN", ""),
            telegram_api_base=env.get("TELEGRAM_API_BASE", "https://api.telegram.org").rstrip("/"),
            telegram_webhook_secret=_telegram_secret(env),
            sms_max_segments=_int(env, "WARNCAST_SMS_MAX_SEGMENTS", 3, 1, 10),
            sms_rate=_float(env, "WARNCAST_SMS_RATE", 10.0),
            telegram_rate=_float(env, "WARNCAST_TELEGRAM_RATE", 30.0),
            wecom_api_base=env.get("WARNCAST_WECOM_API_BASE", cls.wecom_api_base).rstrip("/"),
            dingtalk_api_base=env.get("WARNCAST_DINGTALK_API_BASE", cls.dingtalk_api_base).rstrip("/"),
            feishu_api_base=env.get("WARNCAST_FEISHU_API_BASE", cls.feishu_api_base).rstrip("/"),
            duty_group_interval_ms=_int(env, "WARNCAST_DUTY_GROUP_INTERVAL_MS", 3000, 0, 600_000),
            dispatch_concurrency=_int(env, "WARNCAST_DISPATCH_CONCURRENCY", 64, 1, 1000),
            dispatch_max_attempts=_int(env, "WARNCAST_DISPATCH_MAX_ATTEMPTS", 5, 1, 20),
            thread_messages_per_hour=_int(env, "WARNCAST_THREAD_MESSAGES_PER_HOUR", 4, 1, 60),
            dispatch_reclaim_after=_float(env, "WARNCAST_DISPATCH_RECLAIM_AFTER", 10.0),
            delivery_retention_days=_int(env, "WARNCAST_DELIVERY_RETENTION_DAYS", 7, 1, 366),
            provider_timeout=_float(env, "WARNCAST_PROVIDER_TIMEOUT", 10.0),
            run_workers=env.get("WARNCAST_SERVE_WORKERS", "1") != "0",
            processes=parse_processes(env.get("WARNCAST_PROCESSES", ""), "WARNCAST_PROCESSES"),
            trusted_proxies=_networks(env, "WARNCAST_TRUSTED_PROXIES"),
            partner_allow_networks=_networks(env, "WARNCAST_PARTNER_ALLOW_NETWORKS"),
            public_rate=_float(env, "WARNCAST_PUBLIC_RATE", 20.0),
            public_burst=_int(env, "WARNCAST_PUBLIC_BURST", 60, 1, 1_000_000),
            public_max_ips=_int(env, "WARNCAST_PUBLIC_MAX_IPS", 50_000, 100, 10_000_000),
            auth_failure_burst=_int(env, "WARNCAST_AUTH_FAILURE_BURST", 10, 1, 1_000_000),
            sse_per_ip=_int(env, "WARNCAST_SSE_PER_IP", 50, 1, 1_000_000),
            map_tiles=_tile_url(env.get("WARNCAST_MAP_TILES", "")),
            map_tiles_attribution=env.get("WARNCAST_MAP_TILES_ATTRIBUTION", "").strip()[:300],
        )

    @property
    def embedded_redis(self) -> bool:
        """True when this process runs (or shares) the bundled redis-server in the data dir."""
        return self.redis_url is None and not self.redis_sentinels

    @property
    def twilio_configured(self) -> bool:
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token
            and (self.twilio_from or self.twilio_messaging_service_sid)
        )

    @property
    def telegram_configured(self) -> bool:
        return bool(self.telegram_bot_token)


MAX_PROCESSES = 1024


def _tile_url(raw: str) -> str:
    """A tile URL template: https (or http) with {z}, {x} and {y}; empty means no tiles."""
    raw = raw.strip()
    if not raw:
        return ""
    parsed = urlsplit(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or not all(p in raw for p in ("{z}", "{x}", "{y}")):
        raise SettingsError(f"WARNCAST_MAP_TILES must be an http(s) URL with {{z}}, {{x}} and {{y}}, got {raw!r}")
    return raw


def parse_processes(raw: str, name: str = "WARNCAST_PROCESSES") -> int:
    """`warncast serve` processes: a whole number from 1 to MAX_PROCESSES, or `auto` for one per CPU
    this process may run on (os.cpu_count() counts the machine's, more than a cpuset or taskset
    allows); empty: 1. `name` says where the value came from (the variable, or --processes)."""
    raw = raw.strip().lower()
    if raw == "":
        return 1
    if raw == "auto":
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        return max(1, min(MAX_PROCESSES, len(usable) if usable else os.cpu_count() or 1))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number of processes or 'auto', got {raw!r}") from None
    if not 1 <= value <= MAX_PROCESSES:
        raise SettingsError(f"{name} must be between 1 and {MAX_PROCESSES} (or 'auto'), got {value}")
    return value


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


def _optional_int(env: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    """An integer, or None when the variable is unset or empty (the value is decided later)."""
    return _int(env, name, 0, low, high) if env.get(name) else None


def _float(
    env: Mapping[str, str], name: str, default: float, *, low: float | None = None, high: float = 1_000_000
) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if low is not None and not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g} seconds, got {value:g}")
    if not 0 < value <= high:
        raise SettingsError(f"{name} must be a positive number, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, the first being the default."""
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _redis_location(env: Mapping[str, str]) -> tuple[str | None, tuple[tuple[str, int], ...], str]:
    """REDIS_URL, or the Sentinels and the primary's service name; neither: the embedded server."""
    url = env.get("REDIS_URL", "").strip() or None
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {url!r}")
    sentinels = []
    for item in env.get("WARNCAST_REDIS_SENTINELS", "").split(","):
        if not (item := item.strip()):
            continue
        host, _, port = item.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")  # [::1]:26379
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise SettingsError(f"WARNCAST_REDIS_SENTINELS: {item!r} is not host:port (e.g. 10.0.0.5:26379)")
        sentinels.append((host, int(port)))
    master = env.get("WARNCAST_REDIS_SENTINEL_MASTER", "").strip()
    if sentinels and url is not None:
        raise SettingsError("set either REDIS_URL or WARNCAST_REDIS_SENTINELS, not both")
    if sentinels and not master:
        raise SettingsError(
            "WARNCAST_REDIS_SENTINEL_MASTER (the primary's service name) is required with WARNCAST_REDIS_SENTINELS"
        )
    if master and not sentinels:
        raise SettingsError("WARNCAST_REDIS_SENTINEL_MASTER needs WARNCAST_REDIS_SENTINELS (host:port,...)")
    if sentinels and env.get("WARNCAST_REDIS_MODE", "").strip().lower() == "cluster":
        raise SettingsError("WARNCAST_REDIS_MODE=cluster does not go with WARNCAST_REDIS_SENTINELS")
    return url, tuple(sentinels), master


def _networks(env: Mapping[str, str], name: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """Comma-separated addresses or CIDR blocks, e.g. `10.0.0.0/8, 192.0.2.7, fd00::/8`."""
    networks = []
    for item in env.get(name, "").split(","):
        if item := item.strip():
            try:
                networks.append(ip_network(item))
            except ValueError as exc:
                raise SettingsError(f"{name}: {item!r} is not an IP address or CIDR block ({exc})") from None
    return tuple(networks)


def _telegram_secret(env: Mapping[str, str]) -> str:
    secret = env.get("TELEGRAM_WEBHOOK_SECRET", "")
    if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        raise SettingsError("TELEGRAM_WEBHOOK_SECRET: 1-256 characters of A-Z a-z 0-9 _ -")
    if env.get("TELEGRAM_BOT_TOKEN") and not secret:
        raise SettingsError("TELEGRAM_WEBHOOK_SECRET is required with TELEGRAM_BOT_TOKEN")
    return secret


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
