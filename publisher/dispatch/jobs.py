"""Work items on the dispatch queue, and the per-recipient bookkeeping they share."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

SEGMENT_SIZE = 500  # addresses per queue entry: one Redis round trip plans 500 recipients
SHARDS = 16  # per-recipient state is spread over this many keys per warning version


@dataclass(frozen=True)
class Segment:
    message_id: str
    channel: str
    kind: str  # alert | update | cancel | expired
    addresses: tuple[str, ...]
    attempt: int = 0
    earlier: bool = False  # recipients of an earlier version: policy and grade do not filter them
    recheck: bool = False  # claims another worker held: look again once a dead one's heartbeat is gone

    def to_fields(self) -> dict[str, str]:
        return {
            "msg": self.message_id,
            "ch": self.channel,
            "kind": self.kind,
            "to": "\n".join(self.addresses),
            "attempt": str(self.attempt),
            "earlier": "1" if self.earlier else "0",
            "recheck": "1" if self.recheck else "0",
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Segment:
        return cls(
            fields["msg"],
            fields["ch"],
            fields["kind"],
            tuple(a for a in fields.get("to", "").split("\n") if a),
            int(fields.get("attempt", "0")),
            fields.get("earlier") == "1",
            fields.get("recheck") == "1",
        )


def shard_of(address: str) -> int:
    return zlib.crc32(address.encode()) % SHARDS


def chunks(items: list[str], size: int = SEGMENT_SIZE) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
