"""What the store holds, per key family: `warncast admin stats`, for sizing Redis.

A key family is one name of `foundation.store.keys`: a constant (`AUDIT_LOG`) or a function
(`subscriber`, whose keys match `wc:{sub:*:*}`). The families are read from that module, so a key
name added there is counted here without an edit. Every key is SCANned (on a cluster, on every
primary) and counted in its family; MEMORY USAGE is read for up to `sample` keys of each family
(SCAN's order is the hash table's, so those are a fair sample) and extrapolated to the family's
count, and the same keys' TTLs say how much of a family expires by itself.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from foundation.store import keys
from foundation.store.cluster import primaries

SAMPLE = 1000  # keys per family whose memory is measured
MEMORY_SAMPLES = 64  # MEMORY USAGE ... SAMPLES: elements looked at in a large set or hash (0 would read all)
SCAN_COUNT = 1000
BATCH = 500  # MEMORY USAGE and PTTL calls per round trip
OTHER = "other"  # keys that match no family of keys.py
# What a resident costs: the record and the area indexes it is in (keys.py function names).
SUBSCRIBER = keys.subscriber.__name__
SUBSCRIBER_INDEXES = (keys.area_subscribers.__name__, keys.area_drill_subscribers.__name__)


@dataclass(frozen=True)
class Family:
    name: str  # the name in keys.py
    pattern: str  # its keys, as a glob: `*` is any text


def families() -> list[Family]:
    """Every key family of keys.py, most specific first (so that a key goes to the family that
    spells most of it)."""
    found = []
    for name, value in vars(keys).items():
        if inspect.isfunction(value) and value.__module__ == keys.__name__:
            value = value(*["*"] * len(inspect.signature(value).parameters))  # the pattern of its keys
        if isinstance(value, str) and value.startswith(f"{keys.PREFIX}:"):
            found.append(Family(name, value))
    return sorted(found, key=lambda f: ("*" in f.pattern, -len(f.pattern.replace("*", ""))))


class Classifier:
    """A key's family, by one regular expression of every family's pattern."""

    def __init__(self, known: list[Family] | None = None) -> None:
        self.families = known if known is not None else families()
        alternatives = (
            f"(?P<f{i}>{'.*'.join(re.escape(part) for part in f.pattern.split('*'))})"
            for i, f in enumerate(self.families)
        )
        self._regex = re.compile("|".join(alternatives), re.DOTALL)

    def family(self, key: str) -> str:
        found = self._regex.fullmatch(key)
        if found is None or found.lastgroup is None:
            return OTHER
        return self.families[int(found.lastgroup[1:])].name


@dataclass
class FamilyCount:
    name: str
    pattern: str
    keys: int = 0
    measured: int = 0  # keys whose memory was read
    measured_bytes: int = 0
    measured_expiring: int = 0  # of the measured keys, those with a TTL
    examples: list[str] = field(default_factory=list)  # a few key names (for keys of no family)

    @property
    def bytes(self) -> int:
        """The family's memory: exact when every key was measured, else extrapolated."""
        return round(self.measured_bytes * self.keys / self.measured) if self.measured else 0

    @property
    def estimated(self) -> bool:
        return self.measured < self.keys

    @property
    def expiring_share(self) -> float | None:
        return self.measured_expiring / self.measured if self.measured else None

    def as_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "family": self.name,
            "pattern": self.pattern,
            "keys": self.keys,
            "bytes": self.bytes,
            "measured_keys": self.measured,
            "estimated": self.estimated,
            "expiring_share": self.expiring_share,
        }
        if self.examples:
            row["examples"] = self.examples
        return row


@dataclass
class Inventory:
    mode: str  # standalone | cluster
    primaries: int
    used_memory: int  # INFO used_memory, summed over the primaries: the dataset plus Redis's own
    sample: int
    counts: dict[str, FamilyCount]

    @property
    def rows(self) -> list[FamilyCount]:
        """The families that have keys, the largest first."""
        return sorted((c for c in self.counts.values() if c.keys), key=lambda c: (-c.bytes, -c.keys, c.name))

    @property
    def keys(self) -> int:
        return sum(c.keys for c in self.counts.values())

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.counts.values())

    @property
    def subscribers(self) -> int:
        return self.counts[SUBSCRIBER].keys

    def bytes_per_subscriber(self) -> tuple[float, float] | None:
        """(the subscriber records and area indexes, everything) per subscriber; None without any."""
        if not self.subscribers:
            return None
        own = sum(self.counts[name].bytes for name in (SUBSCRIBER, *SUBSCRIBER_INDEXES) if name in self.counts)
        return own / self.subscribers, self.bytes / self.subscribers

    def as_json(self) -> dict[str, Any]:
        per_subscriber = self.bytes_per_subscriber()
        return {
            "mode": self.mode,
            "primaries": self.primaries,
            "used_memory": self.used_memory,
            "sample": self.sample,
            "keys": self.keys,
            "bytes": self.bytes,
            "subscribers": self.subscribers,
            "bytes_per_subscriber": round(per_subscriber[0], 1) if per_subscriber else None,
            "all_bytes_per_subscriber": round(per_subscriber[1], 1) if per_subscriber else None,
            "families": [row.as_json() for row in self.rows],
        }


async def take_inventory(redis: aioredis.Redis, *, sample: int = SAMPLE) -> Inventory:
    """Count and measure every key of the store (the client `open_redis` yields, of either kind)."""
    classifier = Classifier()
    counts = {f.name: FamilyCount(f.name, f.pattern) for f in classifier.families}
    counts[OTHER] = FamilyCount(OTHER, "*")
    nodes = await primaries(redis)
    used_memory = 0
    for node in nodes if nodes is not None else [None]:
        used_memory += int((await _on(redis, node, "info", "memory"))["used_memory"])
    to_measure: list[tuple[str, str]] = []  # (key, family)
    async for key in scan_all(redis):
        count = counts[classifier.family(key)]
        count.keys += 1
        if count.name == OTHER and len(count.examples) < 5:
            count.examples.append(key)
        if count.keys <= sample:
            to_measure.append((key, count.name))
            if len(to_measure) >= BATCH:
                await _measure(redis, to_measure, counts)
                to_measure = []
    await _measure(redis, to_measure, counts)
    return Inventory(
        "cluster" if nodes is not None else "standalone",
        len(nodes) if nodes is not None else 1,
        used_memory,
        sample,
        counts,
    )


async def _on(redis: aioredis.Redis, node: Any, command: str, *args: Any) -> Any:
    """A command for one primary of a cluster (`node`), or for the one server (`node` None)."""
    method = getattr(redis, command)
    return await (method(*args) if node is None else method(*args, target_nodes=node))


async def scan_all(redis: aioredis.Redis, match: str | None = None) -> AsyncIterator[str]:
    """Every key of the store (matching `match`), on a cluster from every primary."""
    nodes = await primaries(redis)
    for node in nodes if nodes is not None else [None]:
        found = (
            redis.scan_iter(match=match, count=SCAN_COUNT)
            if node is None
            else redis.scan_iter(match=match, count=SCAN_COUNT, target_nodes=node)
        )
        async for key in found:
            yield key.decode() if isinstance(key, bytes) else key


async def _measure(redis: aioredis.Redis, batch: list[tuple[str, str]], counts: dict[str, FamilyCount]) -> None:
    if not batch:
        return
    async with redis.pipeline(transaction=False) as pipe:  # on a cluster: one round trip per node
        for key, _ in batch:
            pipe.memory_usage(key, samples=MEMORY_SAMPLES)
            pipe.pttl(key)
        replies = await pipe.execute()
    for (_, name), size, ttl in zip(batch, replies[::2], replies[1::2], strict=True):
        if size is None:  # gone since the scan (it expired)
            continue
        count = counts[name]
        count.measured += 1
        count.measured_bytes += int(size)
        count.measured_expiring += int(ttl) > 0


def render_text(inventory: Inventory) -> str:
    """An aligned table for the operator (English, like the other admin commands)."""
    head = (
        f"Redis {inventory.mode}, {inventory.primaries} primar{'y' if inventory.primaries == 1 else 'ies'}: "
        f"{inventory.keys} keys, used_memory {_size(inventory.used_memory)} "
        "(the data below plus the server's own overhead)"
    )
    table = [("family", "pattern", "keys", "memory", "per key", "with TTL")]
    for row in inventory.rows:
        share = row.expiring_share
        table.append(
            (
                row.name,
                row.pattern,
                str(row.keys),
                ("~" if row.estimated else "") + _size(row.bytes),
                str(round(row.bytes / row.keys)) if row.keys else "",
                "" if share is None else f"{share:.0%}",
            )
        )
    estimated = any(row.estimated for row in inventory.rows)
    table.append(("total", "", str(inventory.keys), ("~" if estimated else "") + _size(inventory.bytes), "", ""))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    right = {2, 3, 4, 5}
    lines = [head, ""]
    for line in table:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    if estimated:
        lines.append(f"~ estimated: MEMORY USAGE of {inventory.sample} keys of the family, extrapolated to all of them")
    other = inventory.counts[OTHER]
    if other.keys:
        lines.append(f"{other.keys} keys of no family in foundation/store/keys.py, e.g. {', '.join(other.examples)}")
    per_subscriber = inventory.bytes_per_subscriber()
    if per_subscriber:
        lines.append(
            f"{inventory.subscribers} subscribers: {per_subscriber[0]:.0f} bytes each in their records and "
            f"area indexes, {per_subscriber[1]:.0f} bytes of all data per subscriber"
        )
    return "\n".join(lines)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
