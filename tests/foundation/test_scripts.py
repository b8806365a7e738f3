"""The Lua scripts: one file each in foundation/store/lua/, each with its header, loaded and called one
way (foundation/store/scripts.py), surviving a Redis that forgot them, and none left inline in Python."""

from __future__ import annotations

import asyncio
import hashlib
import re
import tomllib
from collections.abc import AsyncIterator
from fnmatch import fnmatch
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from foundation.store.batched_script import BatchedScript
from foundation.store.scripts import Script, names, script
from tests.conftest import RedisStore

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT / "foundation" / "store" / "lua"
PACKAGES = ("foundation", "publisher", "citizen_report", "channels", "warncast")
INLINE = re.compile(r"redis\.p?call\s*\(")
# The first argument of a command that names a key (up to a comma or a closing parenthesis, so
# `unpack(KEYS)` reads `unpack(KEYS`): every one must come from KEYS.
KEY_ARGUMENT = re.compile(r"redis\.p?call\(\s*['\"]([A-Za-z]+)['\"]\s*(?:,\s*([^,)]+))?")
KEYLESS = {"TIME"}


@pytest.fixture
async def redis(redis_store: RedisStore, redis_socket: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_store.async_client()
    yield client
    await client.aclose()


def header(source: str) -> str:
    lines = source.splitlines()
    end = next((i for i, line in enumerate(lines) if not line.startswith("--")), len(lines))
    return "\n".join(lines[:end])


def inline_lua(root: Path) -> list[str]:
    """Python modules under `root`'s packages that hold Lua (a redis.call), as `path:line`."""
    found = []
    for package in PACKAGES:
        for module in sorted((root / package).rglob("*.py")):
            for number, line in enumerate(module.read_text(encoding="utf-8").splitlines(), 1):
                if INLINE.search(line):
                    found.append(f"{module.relative_to(root)}:{number}")
    return found


def test_there_are_scripts_and_every_file_is_one():
    assert len(names()) >= 9
    assert names() == sorted(p.stem for p in LUA.glob("*.lua"))


@pytest.mark.parametrize("name", names())
def test_every_script_loads_with_its_sha_and_a_header(name):
    raw = (LUA / f"{name}.lua").read_bytes()
    loaded = script(name)
    assert isinstance(loaded, Script) and loaded.name == name
    assert loaded.source == raw.decode("utf-8")
    assert loaded.sha == hashlib.sha1(raw).hexdigest()
    assert script(name) is loaded  # read once
    top = header(loaded.source)
    assert top.startswith(f"-- {name}: "), "the header begins with the script's name and what it does"
    for part in ("KEYS", "ARGV", "Returns"):
        assert re.search(rf"^-- +{part}\b", top, re.MULTILINE), f"{name}.lua: no {part} line in its header"
    assert loaded.source.strip() != top.strip(), "a header and no code"


@pytest.mark.parametrize("name", names())
def test_every_key_a_script_touches_comes_from_keys(name):
    source = script(name).source
    body = source[len(header(source)) :]
    calls = KEY_ARGUMENT.findall(body)
    assert calls, f"{name}.lua calls no Redis command"
    for command, first in calls:
        if command.upper() in KEYLESS:
            continue
        first = first.strip()
        assert re.fullmatch(r"KEYS\[[^\]]+\]|unpack\(KEYS", first), f"{name}.lua: {command} on {first}"


@pytest.mark.parametrize("name", names())
def test_every_script_is_used_by_the_service(name):
    uses = [
        module
        for package in PACKAGES
        for module in (ROOT / package).rglob("*.py")
        if re.search(rf'^\w+ = script\("{name}"\)', module.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert uses, f"{name}.lua is loaded by no module"


def test_no_module_holds_inline_lua():
    assert inline_lua(ROOT) == [], "put the script in foundation/store/lua/ and load it with script(name)"


def test_the_inline_check_finds_inline_lua(tmp_path):
    planted = tmp_path / "publisher" / "dispatch" / "sneaky.py"
    planted.parent.mkdir(parents=True)
    planted.write_text("X = \"return redis.call('GET', KEYS[1])\"\n", encoding="utf-8")
    assert inline_lua(tmp_path) == [str(Path("publisher/dispatch/sneaky.py")) + ":1"]


def test_the_scripts_ship_with_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["foundation"]
    for name in names():
        assert any(fnmatch(f"store/lua/{name}.lua", pattern) for pattern in patterns), name


async def test_a_script_is_known_to_redis_by_its_sha(redis):
    for name in names():
        assert await redis.script_load(script(name).source) == script(name).sha


async def test_a_call_runs_the_script_and_loads_it_again_after_a_flush(redis):
    forward = script("receipt_forward")
    await redis.hset("t:state", mapping={"a": "sent|1", "b": "delivered|x"})
    assert await forward(redis, keys=["t:state"], args=["a", "delivered|ok"]) == 1
    await redis.script_flush()  # what a restarted redis-server has forgotten
    assert await redis.script_exists(forward.sha) == [False]
    assert await forward(redis, keys=["t:state"], args=["b", "failed|late"]) == 0  # NOSCRIPT, loaded, run
    assert await redis.script_exists(forward.sha) == [True]
    assert await redis.hgetall("t:state") == {"a": "delivered|ok", "b": "delivered|x"}


async def test_many_calls_go_in_one_round_trip_and_load_the_script_after_a_flush(redis):
    claim, release = script("delivery_claim"), script("delivery_release")
    await redis.script_flush()
    assert await claim.many(redis, [(["t:claims"], ["m1", "a", "b"]), (["t:claims"], ["m2", "b", "c"])]) == [
        [1, 1],
        [0, 1],
    ]
    await redis.script_flush()
    assert await release(redis, keys=["t:claims"], args=["m1", "a", "b", "c"]) == 2
    assert await redis.hgetall("t:claims") == {"c": "m2"}
    await redis.set("t:string", "x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):  # a call's error is raised, as a pipeline would
        await claim.many(redis, [(["t:claims"], ["m3", "d"]), (["t:string"], ["m3", "a"])])


async def test_a_batched_script_is_sent_by_its_sha_and_loaded_again_after_a_flush(redis):
    per_address = script("rate_per_address")
    batched = BatchedScript(redis, per_address)
    assert (batched.sha, batched.source) == (per_address.sha, per_address.source)
    assert await asyncio.gather(*(batched(keys=[f"t:turn:{i % 2}"], args=[60_000]) for i in range(4))) == [1, 1, 0, 0]
    await redis.script_flush()
    assert await batched(keys=["t:turn:2"], args=[60_000]) == 1
    assert await redis.script_exists(per_address.sha) == [True]
