"""`warncast admin stats`: keys and memory per key family of foundation/store/keys.py, on the test
store (one server, and a Redis Cluster, where every primary is scanned) and end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foundation.store import keys
from foundation.store.cluster import primaries
from foundation.store.inventory import OTHER, Classifier, families, render_text, take_inventory
from publisher.dispatch.jobs import shard_of
from tests.delivery_helpers import drain
from tests.publisher.test_dispatch import D1, D2, subscribe
from tests.publisher.test_workflow import published
from tests.warncast.test_cli import run
from warncast.demo import DEMO_SMS_SUBSCRIBERS, DEMO_TELEGRAM_SUBSCRIBERS


def test_every_key_name_of_keys_py_is_a_family() -> None:
    found = {f.name: f.pattern for f in families()}
    assert found["subscriber"] == "wc:{sub:*:*}"
    assert found["delivery_state"] == "wc:{deliv:*:*:*}"
    assert found["AUDIT_LOG"] == "wc:{audit}:log"
    classify = Classifier()
    assert classify.family(keys.subscriber("sms", "+8613800000000")) == "subscriber"
    assert classify.family(keys.area_subscribers("990101", "sms", "orange")) == "area_subscribers"
    assert classify.family(keys.warning("99010000000100_20260101000000_0")) == "warning"
    assert classify.family(keys.USERS) == "USERS" and classify.family(keys.user("wang")) == "user"
    assert classify.family(keys.login_failures("ip:1")) == "login_failures", "not rate_bucket"
    assert classify.family("somebody:else") == OTHER


async def test_counts_and_memory_per_family(client, services, staff, clock):
    sms = await subscribe(services, 5, D1)
    chats = await subscribe(services, 2, D1, channel="telegram")
    await subscribe(services, 1, D2, start=50)
    message = await published(client, staff, clock, grade="red")
    await drain(services)

    nodes = await primaries(services.redis)

    async def dbsize() -> int:
        if nodes is None:
            return int(await services.redis.dbsize())
        return sum([await services.redis.dbsize(target_nodes=node) for node in nodes])

    before = await dbsize()
    inventory = await take_inventory(services.redis)
    after = await dbsize()  # fewer, if a key with a short TTL (a rate limit's turn) expired meanwhile
    counts = {row.name: row.keys for row in inventory.rows}
    shards = len({shard_of(a) for a in sms}) + len({shard_of(a) for a in chats})
    expected = {
        "subscriber": 8,
        "area_subscribers": 3,  # D1 sms orange, D1 telegram yellow, D2 sms orange (the channels' defaults)
        "token": len(staff.tokens),
        "warning": 1,
        "thread": 1,
        "plan": 1,
        "delivery_stats": 1,
        "delivery_state": shards,
        "thread_recipients": shards,
        "outbox": 2,
        "AUDIT_LOG": 1,
        "WARNINGS_INDEX": 1,
        "AREAS": 1,
    }
    assert {name: counts.get(name) for name in expected} == expected
    assert OTHER not in counts, counts
    assert before >= inventory.keys == sum(counts.values()) >= after
    assert inventory.mode == ("cluster" if nodes else "standalone") and inventory.primaries == (len(nodes or [1]))
    rows = {row.name: row for row in inventory.rows}
    assert all(rows[name].bytes > 0 and not rows[name].estimated for name in expected)
    assert rows["thread_recipients"].expiring_share == 1.0 and rows["warning"].expiring_share == 0.0
    own = rows["subscriber"].bytes + rows["area_subscribers"].bytes
    assert inventory.bytes_per_subscriber() == (own / 8, inventory.bytes / 8)
    assert inventory.used_memory > inventory.bytes

    text = render_text(inventory)
    assert f"8 subscribers: {own / 8:.0f} bytes each" in text
    line = next(row for row in text.splitlines() if row.startswith("delivery_state "))
    assert line.split()[:3] == ["delivery_state", "wc:{deliv:*:*:*}", str(shards)]
    assert all(not line.split()[3].startswith("~") for line in text.splitlines() if line.split()[:1] == ["subscriber"])
    assert message["id"]

    sampled = await take_inventory(services.redis, sample=2)
    subscribers = {row.name: row for row in sampled.rows}["subscriber"]
    assert (subscribers.keys, subscribers.measured, subscribers.estimated) == (8, 2, True)
    assert subscribers.bytes == round(subscribers.measured_bytes * 4)
    assert "~ estimated: MEMORY USAGE of 2 keys of the family" in render_text(sampled)


@pytest.mark.timeout(90)  # four processes, each starting the embedded redis-server
def test_admin_stats_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARNCAST_PASSWORD_MEMORY_KIB", "8192")  # the demo operators' passwords, quickly
    run(tmp_path, "admin", "load-demo")
    csv_file = tmp_path / "residents.csv"
    csv_file.write_text(
        "channel,address,area,language,min_grade\n"
        + "".join(f"sms,+86139000000{i:02d},990101,zh,orange\n" for i in range(12)),
        encoding="utf-8",
    )
    run(tmp_path, "admin", "import-subscribers", str(csv_file))
    table = run(tmp_path, "admin", "stats").stdout
    assert table.startswith("Redis standalone, 1 primary: ")
    header = next(line for line in table.splitlines() if line.startswith("family"))
    assert header.split() == ["family", "pattern", "keys", "memory", "per", "key", "with", "TTL"]
    residents = 12 + DEMO_SMS_SUBSCRIBERS + DEMO_TELEGRAM_SUBSCRIBERS  # the import and the demo's own
    assert any(line.split()[:3] == ["subscriber", "wc:{sub:*:*}", str(residents)] for line in table.splitlines())
    assert f"{residents} subscribers: " in table and any(line.startswith("total ") for line in table.splitlines())
    report = json.loads(run(tmp_path, "admin", "stats", "--json", "--sample", "5").stdout)
    rows = {row["family"]: row for row in report["families"]}
    assert (rows["subscriber"]["keys"], rows["subscriber"]["measured_keys"], rows["subscriber"]["estimated"]) == (
        residents,
        5,
        True,
    )
    assert rows["warning"]["keys"] == 1 and report["keys"] == sum(row["keys"] for row in report["families"])
    assert report["subscribers"] == residents and report["bytes_per_subscriber"] > 0
