"""A token bucket: at most `rate` writes per second on average, `burst` at once.

The status refresher and the Event recorder each take a token before every write to
the API server, so what the controller writes per second is bounded cluster-wide
however many objects change. Pure: the caller passes its monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float
    burst: int
    _tokens: float = field(init=False)
    _at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(
                f"a token bucket needs rate > 0 and burst >= 1, not {self.rate} and {self.burst}"
            )
        self._tokens = float(self.burst)

    def take(self, now: float) -> float:
        """Take one token: 0.0 if taken, else the seconds until one is there (nothing
        taken: ask again then)."""
        if self._at is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate
