"""The audit log is a hash chain: every action is in it, and any edit or removal is found."""

from __future__ import annotations

import json

from foundation.access.audit import AuditLog
from foundation.store import keys
from tests.publisher.test_workflow import act, published


async def test_every_action_is_logged_in_order(client, services, staff, clock):
    message = await published(client, staff, clock, grade="red")
    cancel = await act(client, staff, "drafter", message["id"], "cancel", status=201)
    await act(client, staff, "approver", cancel["id"], "approve")
    entries = await services.audit.entries()
    assert [e["action"] for e in entries] == [
        "create",
        "submit",
        "approve",
        "approve",
        "publish",
        "cancel",
        "approve",
        "publish",
    ]
    assert [e["actor"] for e in entries][:4] == ["token:drafter", "token:drafter", "token:approver", "token:chief"]
    assert all(e["prev"] == p["hash"] for p, e in zip(entries, entries[1:], strict=False))
    assert await services.audit.verify() == []


async def _chain(services, n: int = 5) -> AuditLog:
    for i in range(n):
        await services.audit.append("tester", "test", f"t{i}", n=i)
    return services.audit


async def test_edited_entry_is_detected(client, services):
    audit = await _chain(services)
    raw = json.loads(await services.redis.lindex(keys.AUDIT_LOG, 2))
    raw["actor"] = "someone-else"
    await services.redis.lset(keys.AUDIT_LOG, 2, json.dumps(raw))
    problems = await audit.verify()
    assert problems and "entry 3" in problems[0] and "edited" in problems[0]


async def test_removed_entry_is_detected(client, services):
    audit = await _chain(services)
    middle = await services.redis.lindex(keys.AUDIT_LOG, 1)
    await services.redis.lrem(keys.AUDIT_LOG, 1, middle)
    assert any("removed" in p for p in await audit.verify())


async def test_removed_newest_entry_is_detected(client, services):
    audit = await _chain(services)
    await services.redis.rpop(keys.AUDIT_LOG)
    assert any("newest entries removed" in p for p in await audit.verify())


async def test_recomputed_hash_without_the_key_is_detected(client, services):
    audit = await _chain(services)
    import hashlib

    raw = json.loads(await services.redis.lindex(keys.AUDIT_LOG, 4))
    raw["details"] = {"n": 99}
    body = {k: v for k, v in raw.items() if k != "hash"}
    raw["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    await services.redis.lset(keys.AUDIT_LOG, 4, json.dumps(raw))
    await services.redis.hset(keys.AUDIT_HEAD, "hash", raw["hash"])
    assert await audit.verify()


async def test_concurrent_appends_keep_one_chain(client, services):
    import asyncio

    await asyncio.gather(*(services.audit.append("w", "test", str(i)) for i in range(40)))
    entries = await services.audit.entries()
    assert [e["seq"] for e in entries] == list(range(1, 41))
    assert await services.audit.verify() == []
