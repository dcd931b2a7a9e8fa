"""Per-agent bounds on what the collector accepts: sizes, lengths and rates.

A compromised or broken agent must not be able to flood the collector. Sizes and lengths are
checked as messages are converted (collector/convert.py); rates here, with a token bucket per
agent: pure, so a test drives it with its own clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024


class LimitSettings(BaseModel):
    """`[limits]` in the collector's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_message_bytes: int = Field(4 * MIB, ge=64 * 1024, le=64 * MIB)
    """Largest single gRPC message, either way (RESOURCE_EXHAUSTED beyond)."""
    max_batch_results: int = Field(1000, ge=1, le=32_767)
    """At most 32,767: a result's position in its batch is a SMALLINT."""
    max_text_chars: int = Field(2000, ge=80, le=100_000)
    """Summaries and remediation hints."""
    max_id_chars: int = Field(64, ge=16, le=1024)
    """Check ids, value names, inventory section names."""
    max_results_per_minute: int = Field(60_000, ge=1, le=10_000_000)
    """Per agent; a burst of one minute's worth is allowed. A PC makes a few dozen results a
    minute; the headroom lets a full spool drain fast after an outage."""
    max_messages_per_minute: int = Field(6_000, ge=1, le=1_000_000)
    """Per agent, any upstream message (heartbeats, inventories, batches)."""
    max_concurrent_handshakes: int = Field(32, ge=1, le=10_000)
    """Collector-wide: Connects between authentication and Welcome at once; the others wait
    their turn in arrival order (collector/admission.py)."""
    max_waiting_handshakes: int = Field(2_000, ge=0, le=1_000_000)
    """Collector-wide: Connects waiting for a turn; beyond it a Connect is refused at once with
    UNAVAILABLE and the agent backs off. About ten seconds of handshakes on one core."""
    hello_timeout_seconds: float = Field(10.0, ge=0.1, le=300)
    """A Connect whose hello does not come within this is ended (DEADLINE_EXCEEDED), so a
    stalled agent cannot keep a handshake's turn."""


@dataclass
class TokenBucket:
    """Allows `rate_per_s` on average with bursts up to `capacity`."""

    capacity: float
    rate_per_s: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, per_minute: int, now: float) -> TokenBucket:
        return cls(float(per_minute), per_minute / 60.0, float(per_minute), now)

    def take(self, amount: float, now: float) -> bool:
        """Take `amount` tokens if there are enough; refill for the time passed first."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated = now
        if amount > self.tokens:
            return False
        self.tokens -= amount
        return True


@dataclass
class AgentRate:
    """One agent's two buckets: messages and results."""

    messages: TokenBucket
    results: TokenBucket

    @classmethod
    def start(cls, limits: LimitSettings, now: float) -> AgentRate:
        return cls(
            TokenBucket.full(limits.max_messages_per_minute, now),
            TokenBucket.full(limits.max_results_per_minute, now),
        )

    def admit(self, results: int, now: float) -> str | None:
        """None when the message may pass; otherwise which limit it broke."""
        if not self.messages.take(1, now):
            return "too many messages per minute"
        if results and not self.results.take(results, now):
            return "too many results per minute"
        return None
