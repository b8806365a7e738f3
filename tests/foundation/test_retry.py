"""The one retry policy of deliveries, reporter notifications and loop restarts."""

from __future__ import annotations

import pytest

from foundation.retry import RetryPolicy
from foundation.settings import Settings


def test_delays_double_per_attempt_up_to_the_cap():
    policy = RetryPolicy(base=2.0, cap=20.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 20.0]
    assert policy.delay(10_000) == 20.0, "a huge attempt number neither overflows nor passes the cap"


def test_retry_after_is_honoured_but_capped():
    policy = RetryPolicy(base=1.0, cap=60.0, jitter=0.0)
    assert policy.delay(1, retry_after=30.0) == 30.0
    assert policy.delay(3, retry_after=0.5) == 4.0, "the back-off wins when it is longer"
    assert policy.delay(1, retry_after=3600.0) == 60.0
    assert policy.delay(1, retry_after=None) == 1.0


def test_jitter_spreads_delays_within_half_either_side():
    policy = RetryPolicy(base=4.0, cap=1000.0)
    delays = [policy.delay(2) for _ in range(2000)]
    assert 4.0 <= min(delays) < 4.5 and 11.5 < max(delays) <= 12.0
    assert len(set(delays)) > 1000, "not one fixed delay"


def test_exhausted_after_max_attempts():
    policy = RetryPolicy(base=1.0, max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert not RetryPolicy(base=1.0).exhausted(10**6), "no limit: never exhausted"


def test_from_settings_is_the_delivery_policy():
    settings = Settings(dispatch_backoff=0.5, dispatch_max_attempts=4, dispatch_reclaim_after=7.0)
    policy = RetryPolicy.from_settings(settings)
    assert (policy.base, policy.max_attempts, policy.cap) == (0.5, 4, 3600.0)
    notifier = RetryPolicy.from_settings(settings, cap=settings.dispatch_reclaim_after)
    assert notifier.delay(20) == 7.0 and notifier.exhausted(4)


@pytest.mark.parametrize("bad", [{"base": -1.0}, {"base": 1.0, "jitter": 1.5}, {"base": 1.0, "max_attempts": 0}])
def test_nonsense_is_refused(bad):
    with pytest.raises(ValueError):
        RetryPolicy(**bad)
