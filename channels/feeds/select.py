"""Which published messages a feed carries, and the filters readers may ask for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from foundation.areas.registry import AreaRegistry
from publisher.coverage import concerns_area
from publisher.model import PUBLISHED, Message
from publisher.taxonomy import GRADES
from publisher.workflow import Warnings

# Feeds carry the newest messages first; aggregators drop feeds over ~900 KB, so the renderer also
# trims by size. 200 messages is two days of a busy city.
MAX_ENTRIES = 200
SCAN = 2_000  # newest stored messages looked at (drafts included) to find the published ones
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedQuery:
    tag: str  # language of the texts (BCP 47)
    area: str | None = None  # an area code: the feed carries what concerns that area
    min_grade: str | None = None

    def query_string(self) -> str:
        parts = [f"lang={self.tag}"]
        if self.area:
            parts.append(f"area={self.area}")
        if self.min_grade:
            parts.append(f"min_grade={self.min_grade}")
        return "&".join(parts)


async def published_messages(warnings: Warnings, limit: int = MAX_ENTRIES) -> list[Message]:
    """The newest published messages (alerts, updates, cancellations), newest first."""
    messages = [m for m in await warnings.list(limit=SCAN) if m.state == PUBLISHED and m.sent]
    messages.sort(key=lambda m: datetime.fromisoformat(m.sent or ""), reverse=True)
    return messages[:limit]


def matching(messages: list[Message], query: FeedQuery, registry: AreaRegistry) -> list[Message]:
    out = messages
    if query.min_grade:
        floor = GRADES.index(query.min_grade)
        out = [m for m in out if GRADES.index(m.content.grade) >= floor]
    if query.area:
        out = [m for m in out if concerns_area(m.content, registry, query.area)]
    return out


def newest(messages: list[Message]) -> datetime:
    return max((datetime.fromisoformat(m.sent) for m in messages if m.sent), default=EPOCH)
