"""Redis Cluster at the connection layer, on a real cluster of bundled redis-server processes:
found from any node, raw pipelines and scripts split per node, MOVED and ASK followed while a slot
moves, and durable acknowledgements waited for on the primary that holds the write."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis
from redis.asyncio.cluster import RedisCluster

from foundation.errors import Unavailable
from foundation.settings import Settings
from foundation.store.batched_script import BatchedScript
from foundation.store.cluster import is_cluster, primaries
from foundation.store.connection import open_redis
from foundation.store.durable import durable, required_replicas
from foundation.store.raw_pipeline import execute_raw
from foundation.store.scripts import Script
from tests.redis_cluster import ClusterNode, LocalCluster

ECHO_KEY = Script("echo_key", "-- echo_key: test\nreturn redis.call('INCR', KEYS[1])")


def external(url: str, tmp_path: Path, **changes: object) -> Settings:
    return Settings(redis_url=url, data_dir=tmp_path, secret_key="cluster-test", log_json=False).with_(**changes)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    local = LocalCluster(masters=3, replicas=1).start()
    yield local
    local.stop()


@pytest.fixture
def clean(cluster: LocalCluster) -> LocalCluster:
    cluster.flush()
    return cluster


def keys_on_every_primary(count: int = 30) -> list[str]:
    """`count` keys whose slots fall on all three primaries (hash tags spread over the 16,384 slots)."""
    return [f"wc:{{spread:{i}}}:n" for i in range(count)]


def node_of(cluster: LocalCluster, key: str) -> ClusterNode:
    client = cluster.nodes[0].client()
    try:
        slot = int(client.cluster("keyslot", key))
        for start, end, primary, *_ in client.cluster("slots"):
            if start <= slot <= end:
                return next(n for n in cluster.nodes if n.port == int(primary[1]))
    finally:
        client.close()
    raise AssertionError(f"slot of {key} not served")


async def test_any_node_gives_a_cluster_client(clean: LocalCluster, tmp_path: Path) -> None:
    for node in clean.nodes:  # the primaries and the replicas alike
        async with open_redis(external(f"redis://127.0.0.1:{node.port}/0", tmp_path)) as redis:
            assert is_cluster(redis)
            assert len(await primaries(redis) or []) == 3
            for key in keys_on_every_primary():
                await redis.set(key, "1")  # no MOVED reaches us, wherever the key lives
    async with open_redis(external(clean.url, tmp_path, redis_mode="standalone")) as redis:
        assert not is_cluster(redis), "standalone trusts the operator"


async def test_raw_pipelines_and_scripts_go_to_each_keys_node(clean: LocalCluster, tmp_path: Path) -> None:
    spread = keys_on_every_primary()
    assert len({node_of(clean, key).port for key in spread}) == 3, "the keys cover every primary"
    async with open_redis(external(clean.url, tmp_path)) as redis:
        replies = await execute_raw(redis, [("INCRBY", key, i) for i, key in enumerate(spread)])
        assert replies == list(range(len(spread))), "replies in the order of the commands"
        counts = await ECHO_KEY.many(redis, [([key], []) for key in spread])
        assert counts == [i + 1 for i in range(len(spread))]
        await redis.script_flush()  # every primary forgets the script: it is loaded again where needed
        assert await ECHO_KEY.many(redis, [([key], []) for key in spread]) == [i + 2 for i in range(len(spread))]


async def test_a_moving_slot_is_followed_through_ask_and_moved(clean: LocalCluster, tmp_path: Path) -> None:
    key = "wc:{moving}:n"
    source = node_of(clean, key)
    target = next(n for n in clean.primaries() if n.port != source.port)
    src, dst = source.client(), target.client()
    slot = int(src.cluster("keyslot", key))
    src_id, dst_id = src.cluster("myid"), dst.cluster("myid")
    try:
        async with open_redis(external(clean.url, tmp_path)) as redis:
            assert await execute_raw(redis, [("INCR", key)]) == [1]
            # Half-way through a migration: the key has moved, the slot not yet. The source answers ASK.
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            src.execute_command("MIGRATE", "127.0.0.1", target.port, key, 0, 5000)
            assert await execute_raw(redis, [("INCR", key)]) == [2], "ASK followed"
            assert await ECHO_KEY.many(redis, [([key], [])]) == [3]
            # The migration ends: the slot belongs to the target, and the source answers MOVED.
            for node in clean.primaries():
                client = node.client()
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
                client.close()
            assert await execute_raw(redis, [("INCR", key)]) == [4], "MOVED followed"
            assert int(await redis.get(key)) == 4
    finally:
        src.close()
        dst.close()


async def test_durable_waits_on_the_primary_that_holds_the_write(clean: LocalCluster, tmp_path: Path) -> None:
    settings = external(clean.url, tmp_path)
    near, far = (
        "wc:{reports}:index",
        next(k for k in keys_on_every_primary() if node_of(clean, k) != node_of(clean, "wc:{reports}:index")),
    )
    async with open_redis(settings) as redis:
        assert await required_replicas(redis, settings) == 1, "every primary has a replica"
        await redis.set(near, "1")
        await durable(redis, 1, near=near)
        replica = replica_of(clean, node_of(clean, near))
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            await redis.set(near, "2")
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await durable(redis, 1, near=near)
            assert time.monotonic() - started < 1.9
            await redis.set(far, "1")
            await durable(redis, 1, near=far)  # another primary's replica is fine
        finally:
            replica.proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(0)
        await durable(redis, 1, near=near)


async def test_a_batch_waits_on_the_primary_that_holds_its_keys(clean: LocalCluster, tmp_path: Path) -> None:
    near = "wc:{reports}:index"
    async with open_redis(external(clean.url, tmp_path)) as redis:
        script = BatchedScript(redis, ECHO_KEY, replicas=1, near=near)
        replies = await asyncio.gather(*(script(["wc:{reports}:n"], []) for _ in range(30)))
        assert sorted(replies) == list(range(1, 31)) and script.round_trips < 30
        replica = replica_of(clean, node_of(clean, near))
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            outcomes = await asyncio.gather(*(script(["wc:{reports}:n"], []) for _ in range(3)), return_exceptions=True)
            assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
        finally:
            replica.proc.send_signal(signal.SIGCONT)
        assert await script(["wc:{reports}:n"], []) == 34


def replica_of(cluster: LocalCluster, primary: ClusterNode) -> ClusterNode:
    for node in cluster.nodes:
        client = node.client()
        try:
            info = client.info("replication")
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == primary.port:
                return node
        except sync_redis.RedisError:
            continue
        finally:
            client.close()
    raise AssertionError(f"no replica of {primary.port}")


async def test_the_cluster_client_is_redis_pys(clean: LocalCluster, tmp_path: Path) -> None:
    async with open_redis(external(clean.url, tmp_path, redis_mode="cluster")) as redis:
        assert isinstance(redis, RedisCluster)


async def test_a_primarys_replica_takes_over_and_the_same_client_carries_on(tmp_path: Path) -> None:
    """SIGKILL the primary that holds the reports: the cluster promotes its replica, and the client
    the service holds finds it by itself (503s meanwhile, never a lost durable write)."""
    local = LocalCluster(masters=3, replicas=1, appendonly=True, directory=tmp_path / "failover").start()
    try:
        key = "wc:{reports}:index"
        doomed = local.node_of(key)
        replica = replica_of(local, doomed)
        entry = next(n for n in local.nodes if n is not doomed)
        settings = external(f"redis://127.0.0.1:{entry.port}/0", tmp_path)
        async with open_redis(settings) as redis:
            await redis.set(key, "before")
            await durable(redis, 1, near=key)
            assert doomed.proc is not None
            doomed.proc.send_signal(signal.SIGKILL)
            doomed.proc.wait(10)
            killed = time.monotonic()
            refused = 0
            while True:
                try:
                    await redis.set("wc:{reports}:after", "written")
                    break
                except Exception as exc:  # noqa: BLE001 - what the service answers 503 for
                    from channels.cache import redis_away

                    assert redis_away(exc), f"not a clean 'Redis away' error: {exc!r}"
                    refused += 1
                    assert time.monotonic() - killed < 30, "no replica took over within 30 s"
                    await asyncio.sleep(0.2)
            assert local.node_of(key).port == replica.port, "the replica is the primary now"
            assert await redis.get(key) == "before", "the durable write survived the failover"
            assert refused >= 1, "writes were refused while no primary held the slot"
    finally:
        local.stop()
