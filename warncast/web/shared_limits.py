"""The public-read limits of `warncast/web/limits.py`, shared by the processes of one host
(`warncast serve --processes N`, warncast/processes.py), in shared memory.

Why shared memory and not Redis: a public read is served from a cached rendering, and a Redis round
trip per read would cost more than the read itself (and would make a public read fail when Redis is
away, when the pulled outputs are meant to keep serving their last rendering). What a flood
exhausts is the host (its processes' event loops and sockets), so one allowance per host is what
protects it; each host of a fleet keeps its own.

The supervisor creates one table before it starts its children (`SharedLimits.create`) and passes
its file descriptor (a memfd: no name on any file system, gone with the last process holding it) to
each child, which maps it (`SharedLimits.attach`). The file is a header and three regions:

- two bucket tables (public reads, wrong API tokens): sets of WAYS entries (tag, tokens, last time);
- one stream table: sets of WAYS rows (tag, one count per process slot), the live streams each
  process holds for one address; the supervisor zeroes a dead child's column before it restarts
  it (`clear_slot`), since the dead child's streams are gone.

A client address is found by a salted 64-bit hash of its bucket key (`limits.bucket_key`): the set
is the hash modulo the number of sets, and the entry within the set is the one with the same hash
as its tag, so two addresses share a bucket only when their 64-bit hashes are equal (about 7e-11
for 50,000 addresses at once). A bucket table has at least 4 x WARNCAST_PUBLIC_MAX_IPS entries (a
power of two), i.e. at most 2 addresses per 8-entry set on average when that many are active at
once: a set is then full with probability under 2.4e-4, and a newcomer to a full set forgets the
least recently seen address of that set (which starts again with a full bucket, as when the
per-process table forgets its stalest): fewer than 1.5e-4 of the addresses. The salt is random per
table, so nobody can choose addresses that collide.

Each set is locked with a POSIX record lock (fcntl) on its own bytes: processes working on
different sets never wait for each other, and the kernel releases a dead process's locks, so a
child killed in the middle of an update does not block the others. Record locks do not exclude
within one process: each process must use the table from one thread (its event loop does).

Time: the buckets' times are time.monotonic(), which on Linux is one clock for the whole system
(CLOCK_MONOTONIC), so every process of the host agrees on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import math
import mmap
import os
import secrets
import struct
import tempfile
import time
from collections.abc import Callable, Iterator

from aiohttp import web

from foundation.settings import Settings
from warncast.web.limits import (
    AUTH_FAILURE_RATE,
    AUTH_FAILURES,
    LIVE_STREAMS,
    PUBLIC_LIMITS,
    bucket_key,
    forget_stream,
    too_many_streams,
)

log = logging.getLogger(__name__)

MAGIC = b"WCLIMIT1"
WAYS = 8  # entries per set: the ones an address may occupy
HEADER = struct.Struct("<8sIQQQ16s")  # magic, slots, sets: public, auth failures, streams; the salt
BUCKET = struct.Struct("<Qdd")  # tag (0: free), tokens, monotonic time of the last take
BUCKET_LOAD = 4  # bucket table entries per remembered address (WARNCAST_PUBLIC_MAX_IPS)
# Addresses holding live streams at once on one host. A row takes 8 + 4 x slots bytes: 2 processes,
# 1 MB; 64, 17 MB. An address that finds its set full of live rows is counted by each process
# alone, as before (logged).
STREAM_ROWS = 65_536
LOCATED = 16_384  # keys whose hash a process remembers (about 2.5 MB), forgotten all at once when full
PRUNE_SECONDS = 0.5  # how often a process drops the streams whose connection is gone from its column


def _sets_for(entries: int) -> int:
    """Sets of WAYS for at least `entries` entries, a power of two."""
    return 1 << max(0, math.ceil(math.log2(max(1, math.ceil(entries / WAYS)))))


class _Region:
    """`sets` sets of WAYS entries of `entry` bytes each, from `offset` in the file."""

    def __init__(self, table: SharedLimits, offset: int, sets: int, entry: struct.Struct) -> None:
        self.table, self.offset, self.sets, self.entry = table, offset, sets, entry
        self.set_bytes = entry.size * WAYS
        self.set_format = struct.Struct("<" + entry.format.lstrip("<") * WAYS)
        self.fields = len(entry.unpack(bytes(entry.size)))
        self._located: dict[str, tuple[int, int]] = {}

    @property
    def size(self) -> int:
        return self.sets * self.set_bytes

    def locate(self, key: str) -> tuple[int, int]:
        """(tag, set) of a bucket key; the recent ones remembered (a hash costs more than the rest)."""
        found = self._located.get(key)
        if found is None:
            if len(self._located) >= LOCATED:
                self._located.clear()
            hasher = self.table.hasher.copy()
            hasher.update(key.encode())
            tag = int.from_bytes(hasher.digest(), "little") or 1
            found = self._located[key] = (tag, (tag >> 8) % self.sets)
        return found

    def acquire(self, index: int) -> int:
        """Take set `index`'s record lock (waiting for it); returns the set's offset in the file."""
        start = self.offset + index * self.set_bytes
        fcntl.lockf(self.table.fd, fcntl.LOCK_EX, self.set_bytes, start)
        return start

    def release(self, start: int) -> None:
        fcntl.lockf(self.table.fd, fcntl.LOCK_UN, self.set_bytes, start)

    @contextlib.contextmanager
    def locked(self, index: int) -> Iterator[int]:
        """Hold set `index`'s record lock; yields its offset in the file."""
        start = self.acquire(index)
        try:
            yield start
        finally:
            self.release(start)

    def read(self, start: int) -> list[tuple[int | float, ...]]:
        """The WAYS entries of the set at `start` (hold its lock)."""
        flat = self.set_format.unpack_from(self.table.map, start)
        n = self.fields
        return [flat[i : i + n] for i in range(0, len(flat), n)]

    def write(self, start: int, way: int, *values: int | float) -> None:
        self.entry.pack_into(self.table.map, start + way * self.entry.size, *values)

    def used(self) -> int:
        """Entries in use (a scan: for tests and diagnostics)."""
        count = 0
        for index in range(self.sets):
            with self.locked(index) as start:
                count += sum(1 for entry in self.read(start) if entry[0])
        return count


class SharedLimits:
    """The shared file of one host's limits: create it in the supervisor, attach to it in each child."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        size = os.fstat(fd).st_size
        self.map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        magic, self.slots, public_sets, auth_sets, stream_sets, self.salt = HEADER.unpack_from(self.map, 0)
        if magic != MAGIC:
            raise ValueError(f"file descriptor {fd} is not a warncast limits table")
        self.hasher = hashlib.blake2b(digest_size=8, key=self.salt)  # copied for each key
        self.row = struct.Struct(f"<Q{self.slots}I")
        self.public = _Region(self, HEADER.size, public_sets, BUCKET)
        self.auth = _Region(self, self.public.offset + self.public.size, auth_sets, BUCKET)
        self.streams = _Region(self, self.auth.offset + self.auth.size, stream_sets, self.row)

    @classmethod
    def create(cls, slots: int, max_ips: int, stream_rows: int = STREAM_ROWS) -> SharedLimits:
        """A new zeroed table for `slots` processes remembering up to `max_ips` addresses each."""
        sets = _sets_for(BUCKET_LOAD * max_ips), _sets_for(stream_rows)
        row = struct.Struct(f"<Q{slots}I")
        size = HEADER.size + 2 * sets[0] * WAYS * BUCKET.size + sets[1] * WAYS * row.size
        fd = _anonymous_file()
        os.ftruncate(fd, size)  # sparse: memory is taken only as entries are used
        os.pwrite(fd, HEADER.pack(MAGIC, slots, sets[0], sets[0], sets[1], secrets.token_bytes(16)), 0)
        return cls(fd)

    @classmethod
    def attach(cls, fd: int) -> SharedLimits:
        """The table the supervisor passed as `fd`."""
        return cls(fd)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)

    def clear_slot(self, slot: int) -> int:
        """Zero the stream counts of process `slot` (it has died: its streams are gone); the rows
        left with no stream are freed. Returns the streams it held."""
        region, freed = self.streams, 0
        for index in range(region.sets):
            with region.locked(index) as start:
                for way, row in enumerate(region.read(start)):
                    if not row[0] or not row[1 + slot]:
                        continue
                    freed += int(row[1 + slot])
                    counts = [int(c) for c in row[1:]]
                    counts[slot] = 0
                    region.write(start, way, row[0] if any(counts) else 0, *counts)
        return freed


def _anonymous_file() -> int:
    """A file with no name: a memfd on Linux, else an unlinked temporary file."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("warncast-limits", os.MFD_CLOEXEC)
    fd, path = tempfile.mkstemp(prefix="warncast-limits-")
    os.unlink(path)
    return fd


class SharedTokenBuckets:
    """`limits.TokenBuckets` (same rate, burst and answers) on a region of the shared table, so one
    address's bucket is the same in every process of the host."""

    def __init__(self, region: _Region, rate: float, burst: int, now: Callable[[], float] = time.monotonic) -> None:
        self.region, self.rate, self.burst, self.now = region, rate, float(burst), now

    def __len__(self) -> int:
        return self.region.used()

    def wait(self, ip: str) -> int:
        """Whole seconds until `ip`'s bucket has a token (0: it has one); spends nothing."""
        region = self.region
        tag, index = region.locate(bucket_key(ip))
        start = region.acquire(index)
        try:
            flat = region.set_format.unpack_from(region.table.map, start)
            now = self.now()
        finally:
            region.release(start)
        tags = flat[0::3]
        if tag not in tags:
            return 0
        way = 3 * tags.index(tag)
        tokens = min(self.burst, flat[way + 1] + max(0.0, now - flat[way + 2]) * self.rate)
        return 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))

    def take(self, ip: str) -> int:
        """Spend a token of `ip`'s bucket: 0 if it had one, else the whole seconds until it has.
        (The hot path of every anonymous read: one lock, one read and one write of the set.)"""
        region = self.region
        tag, index = region.locate(bucket_key(ip))
        start = region.acquire(index)
        try:
            flat = region.set_format.unpack_from(region.table.map, start)
            now = self.now()
            tags = flat[0::3]
            if tag in tags:
                way = tags.index(tag)
                tokens = min(self.burst, flat[3 * way + 1] + max(0.0, now - flat[3 * way + 2]) * self.rate)
            else:  # new here: a free entry, else the set's least recently seen
                if 0 in tags:
                    way = tags.index(0)
                else:
                    times = flat[2::3]
                    way = times.index(min(times))
                tokens = self.burst
            spent = tokens >= 1
            BUCKET.pack_into(region.table.map, start + way * BUCKET.size, tag, tokens - 1 if spent else tokens, now)
        finally:
            region.release(start)
        return 0 if spent else max(1, math.ceil((1 - tokens) / self.rate))


class SharedStreamCap:
    """`limits.StreamCap` for the whole host: at most `per_ip` live streams per address across every
    process. Each process keeps its own streams (to notice the ones whose connection is gone, as the
    per-process cap does) and writes how many it holds into its column of the address's row; the
    cap is the row's sum. Every PRUNE_SECONDS a process with streams drops the gone ones from its
    column, so that a place another process frees is seen here within about that."""

    def __init__(self, table: SharedLimits, slot: int, per_ip: int) -> None:
        self.region, self.slot, self.per_ip = table.streams, slot, per_ip
        self._open: dict[str, list[web.Request]] = {}
        self._overflow: set[str] = set()  # keys with no row (a full set): counted in this process only
        self._pruning: asyncio.TimerHandle | None = None

    def count(self, ip: str) -> int:
        """Streams of `ip` open on this host (this process's alone for an address without a row)."""
        key = bucket_key(ip)
        if key in self._overflow:
            return len(self._open.get(key, ()))
        tag, index = self.region.locate(key)
        with self.region.locked(index) as start:
            for row in self.region.read(start):
                if row[0] == tag:
                    return int(sum(row[1:]))
        return 0

    def open(self, ip: str, request: web.Request) -> None:
        key = bucket_key(ip)
        held = self._open.setdefault(key, [])
        tag, index = self.region.locate(key)
        counts: list[int] = []
        with self.region.locked(index) as start:
            rows = self.region.read(start)
            way = next((w for w, row in enumerate(rows) if row[0] == tag), None)
            if way is None:
                way = next((w for w, row in enumerate(rows) if not row[0] or not any(row[1:])), None)
            if way is None:
                if key not in self._overflow:
                    log.warning("live streams: no room in the shared table for an address; counted per process")
                self._overflow.add(key)
                total, others = len(held), 0
            else:
                self._overflow.discard(key)
                counts = [int(c) for c in rows[way][1:]] if rows[way][0] == tag else [0] * (len(rows[way]) - 1)
                others = sum(counts) - counts[self.slot]
                total = others + len(held)
            if total >= self.per_ip:
                # A screen that went away is noticed by its handler only at the next write (a ping, up
                # to 20 s later); its lost connection must not keep a reconnecting screen out.
                held[:] = [r for r in held if r.transport is not None]
                total = others + len(held)
            if total < self.per_ip:
                held.append(request)
            if way is not None:
                self._write_row(start, way, tag, counts, len(held))
            if total >= self.per_ip:
                if not held:
                    self._open.pop(key, None)
                raise too_many_streams(self.per_ip)
        self._prune_soon()

    def close(self, ip: str, request: web.Request) -> None:
        key = bucket_key(ip)
        self._publish(key, forget_stream(self._open, key, request))

    def _publish(self, key: str, mine: int) -> None:
        """Write this process's count for `key` into its row (freeing the row when it is all zero)."""
        if key in self._overflow:
            if not mine:
                self._overflow.discard(key)
            return
        tag, index = self.region.locate(key)
        with self.region.locked(index) as start:
            for way, row in enumerate(self.region.read(start)):
                if row[0] == tag:
                    self._write_row(start, way, tag, [int(c) for c in row[1:]], mine)
                    return

    def _write_row(self, start: int, way: int, tag: int, counts: list[int], mine: int) -> None:
        counts[self.slot] = mine
        self.region.write(start, way, tag if any(counts) else 0, *counts)

    def _prune_soon(self) -> None:
        if self._pruning is None and self._open:
            with contextlib.suppress(RuntimeError):  # no running loop (driven by hand): prune when asked
                self._pruning = asyncio.get_running_loop().call_later(PRUNE_SECONDS, self._prune)

    def _prune(self) -> None:
        self._pruning = None
        for key, held in list(self._open.items()):
            alive = [r for r in held if r.transport is not None]
            if len(alive) != len(held):
                if alive:
                    self._open[key] = alive
                else:
                    del self._open[key]
                self._publish(key, len(alive))
        self._prune_soon()


def install_shared_limits(app: web.Application, settings: Settings, table: SharedLimits, slot: int) -> None:
    """Replace the app's per-process limits (`limits.install_limits`) by the host's, as process
    `slot` (0-based) of the table's; before the app starts."""
    app[PUBLIC_LIMITS] = SharedTokenBuckets(table.public, settings.public_rate, settings.public_burst)
    app[AUTH_FAILURES] = SharedTokenBuckets(table.auth, AUTH_FAILURE_RATE, settings.auth_failure_burst)
    app[LIVE_STREAMS] = SharedStreamCap(table, slot, settings.sse_per_ip)
