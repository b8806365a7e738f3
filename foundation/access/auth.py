"""People and machines: users with Argon2id passwords, API bearer tokens, console sessions.

Secrets (session ids, API tokens) are stored only as SHA-256 hashes, so a copy of the database
does not let anyone log in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from datetime import UTC, datetime

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from foundation.access.audit import Actor
from foundation.access.roles import ROLES
from foundation.errors import TooManyRequests
from foundation.i18n import N_
from foundation.store import keys
from foundation.store.streams import as_fields, decoded_hash, decoded_list

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 10
MAX_LOGIN_FAILURES = 5
LOGIN_LOCK_SECONDS = 300


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_roles(roles: list[str]) -> list[str]:
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise ValueError(f"unknown role(s) {', '.join(bad) or '(none)'}; choose from {', '.join(ROLES)}")
    return sorted(set(roles))


class Accounts:
    def __init__(self, redis: aioredis.Redis, memory_kib: int = 65536) -> None:
        self.redis = redis
        # Argon2id; the library's recommended time cost, memory as configured (64 MiB by default).
        self.hasher = PasswordHasher(memory_cost=memory_kib)

    # users
    async def create_user(
        self, name: str, roles: list[str], password: str, *, display: str = "", unit: str = ""
    ) -> None:
        if not NAME_PATTERN.match(name):
            raise ValueError("user names are 2-32 characters: lower-case letters, digits, '.', '_' or '-'")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"passwords need at least {MIN_PASSWORD} characters")
        roles = check_roles(roles)
        record = {
            "name": name,
            "display": display or name,
            "roles": json.dumps(roles),
            "password": self.hasher.hash(password),
            "created": datetime.now(UTC).isoformat(),
            "disabled": "0",
            "unit": unit,
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.user(name), mapping=as_fields(record))
            pipe.sadd(keys.USERS, name)
            await pipe.execute()

    async def user_exists(self, name: str) -> bool:
        return bool(await self.redis.exists(keys.user(name)))

    async def get_actor(self, name: str) -> Actor | None:
        record = decoded_hash(await self.redis.hgetall(keys.user(name)))
        if not record or record.get("disabled") == "1":
            return None
        return _actor(record)

    async def set_unit(self, name: str, unit: str) -> None:
        if not await self.user_exists(name):
            raise ValueError(f"no user {name}")
        await self.redis.hset(keys.user(name), "unit", unit)

    async def set_pager(self, name: str, channel: str, address: str) -> None:
        """Where this user is paged when a warning waits for their approval: `sms` and a number,
        `telegram` and a chat id, or `""` for nowhere (checked by the caller: this layer knows no
        channels)."""
        if not await self.user_exists(name):
            raise ValueError(f"no user {name}")
        await self.redis.hset(keys.user(name), mapping={"pager_channel": channel, "pager_address": address})

    async def pagers(self) -> list[tuple[Actor, str, str]]:
        """Every active user with a pager: (actor, channel, address)."""
        found = []
        for name in decoded_list(sorted(await self.redis.smembers(keys.USERS))):
            record = decoded_hash(await self.redis.hgetall(keys.user(name)))
            if record and record.get("disabled") != "1" and record.get("pager_address"):
                found.append((_actor(record), record.get("pager_channel", ""), record["pager_address"]))
        return found

    async def list_users(self) -> list[dict[str, object]]:
        names = decoded_list(sorted(await self.redis.smembers(keys.USERS)))
        out = []
        for name in names:
            record = decoded_hash(await self.redis.hgetall(keys.user(name)))
            if record:
                out.append(
                    {
                        "name": name,
                        "display": record.get("display", name),
                        "roles": json.loads(record["roles"]),
                        "disabled": record.get("disabled") == "1",
                        "unit": record.get("unit", ""),
                        "pager": record.get("pager_channel", "") if record.get("pager_address") else "",
                    }
                )
        return out

    async def authenticate(self, name: str, password: str, client: str) -> Actor | None:
        """Check a password; five failures lock the name (from that client) for five minutes."""
        throttle = keys.login_failures(f"{_sha256(name.lower())[:16]}:{client}")
        if int(await self.redis.get(throttle) or 0) >= MAX_LOGIN_FAILURES:
            raise TooManyRequests(N_("Too many failed logins. Try again in a few minutes."))
        record = decoded_hash(await self.redis.hgetall(keys.user(name))) if NAME_PATTERN.match(name) else {}
        ok = False
        if record and record.get("disabled") != "1":
            try:
                ok = self.hasher.verify(record["password"], password)
            except (VerificationError, InvalidHashError):
                ok = False
        else:
            self.hasher.hash(password)  # spend the same time, so timing does not reveal user names
        if not ok:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(throttle)
                pipe.expire(throttle, LOGIN_LOCK_SECONDS)
                await pipe.execute()
            return None
        await self.redis.delete(throttle)
        if self.hasher.check_needs_rehash(record["password"]):
            await self.redis.hset(keys.user(name), "password", self.hasher.hash(password))
        return _actor(record)

    # API tokens
    async def create_token(self, name: str, roles: list[str], unit: str = "") -> str:
        if not NAME_PATTERN.match(name):
            raise ValueError("token names are 2-32 characters: lower-case letters, digits, '.', '_' or '-'")
        roles = check_roles(roles)
        token = "wct_" + secrets.token_urlsafe(32)
        await self.redis.hset(
            keys.token(_sha256(token)),
            mapping={
                "name": name,
                "roles": json.dumps(roles),
                "created": datetime.now(UTC).isoformat(),
                "unit": unit,
            },
        )
        return token

    async def token_actor(self, token: str) -> Actor | None:
        if not token.startswith("wct_") or len(token) > 100:
            return None
        record = decoded_hash(await self.redis.hgetall(keys.token(_sha256(token))))
        if not record:
            return None
        return Actor(record["name"], frozenset(json.loads(record["roles"])), "token", record.get("unit", ""))

    # console sessions
    async def open_session(self, actor: Actor, hours: int) -> tuple[str, str]:
        """Return (session id for the cookie, CSRF token for the forms)."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        key = keys.session(_sha256(session_id))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user": actor.name, "csrf": csrf})
            pipe.expire(key, hours * 3600)
            await pipe.execute()
        return session_id, csrf

    async def session(self, session_id: str) -> tuple[Actor, str] | None:
        if not session_id or len(session_id) > 100:
            return None
        record = decoded_hash(await self.redis.hgetall(keys.session(_sha256(session_id))))
        if not record:
            return None
        actor = await self.get_actor(record["user"])
        return (actor, record["csrf"]) if actor else None

    async def close_session(self, session_id: str) -> None:
        await self.redis.delete(keys.session(_sha256(session_id)))


def _actor(record: dict[str, str]) -> Actor:
    return Actor(record["name"], frozenset(json.loads(record["roles"])), unit=record.get("unit", ""))


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected, given or "")
