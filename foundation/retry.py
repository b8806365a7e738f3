"""One retry policy: exponential back-off with jitter and a cap, and when to give up.

Dispatch workers and the reporter notifier ask it how long a failed send waits and when it becomes
a dead letter; the supervisor asks it how long a failed background loop waits before its restart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from foundation.settings import Settings

MAX_EXPONENT = 60  # 2**60 times any base is past every cap; a larger power would overflow a float


@dataclass(frozen=True)
class RetryPolicy:
    """After the n-th failed attempt (n = 1 for the first), the next one waits `base * 2**(n-1)`
    seconds scaled by a random factor in [1 - jitter, 1 + jitter], at least `retry_after` when the
    other side asked for that, at most `cap`. Once n reaches `max_attempts`, give up."""

    base: float  # seconds before the first retry
    cap: float = 3600.0  # no wait is longer
    max_attempts: int | None = None  # None: never exhausted
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"bad retry policy: {self}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"bad retry policy: {self}")

    @classmethod
    def from_settings(cls, settings: Settings, *, cap: float = 3600.0) -> RetryPolicy:
        """Deliveries: `dispatch_backoff` doubling per attempt, dead after `dispatch_max_attempts`."""
        return cls(base=settings.dispatch_backoff, cap=cap, max_attempts=settings.dispatch_max_attempts)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after `attempt` attempts have failed (>= 1)."""
        exponent = min(max(attempt, 1) - 1, MAX_EXPONENT)
        backoff = self.base * 2.0**exponent
        if self.jitter:
            backoff *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return min(max(backoff, retry_after or 0.0), self.cap)

    def exhausted(self, attempt: int) -> bool:
        """True when `attempt` failed attempts are all there may be: the work becomes a dead letter."""
        return self.max_attempts is not None and attempt >= self.max_attempts
