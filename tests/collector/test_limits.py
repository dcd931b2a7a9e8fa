"""collector/limits.py: token buckets on a test clock."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from collector.limits import AgentRate, LimitSettings, TokenBucket


def test_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket.full(per_minute=60, now=0.0)
    assert all(bucket.take(1, 0.0) for _ in range(60))
    assert not bucket.take(1, 0.0)
    assert not bucket.take(1, 0.5)
    assert bucket.take(1, 1.0)  # one per second refills
    assert bucket.take(10, 100.0)  # long idle: full again, never above capacity
    assert bucket.tokens <= 60


def test_agent_rate_names_the_limit_broken() -> None:
    limits = LimitSettings(max_messages_per_minute=3, max_results_per_minute=100)
    rate = AgentRate.start(limits, now=0.0)
    assert rate.admit(results=100, now=0.0) is None
    assert rate.admit(results=1, now=0.0) == "too many results per minute"
    assert rate.admit(results=0, now=0.0) is None
    assert rate.admit(results=0, now=0.0) == "too many messages per minute"
    assert rate.admit(results=1, now=60.0) is None


@pytest.mark.parametrize(
    "bad",
    [{"max_message_bytes": 10}, {"max_batch_results": 0}, {"max_results_per_minute": -1}],
)
def test_limits_are_validated(bad: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        LimitSettings.model_validate(bad)
