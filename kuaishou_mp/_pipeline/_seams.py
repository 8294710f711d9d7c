"""Where later features plug into the pipeline: gating retries, throttle feedback.

Each seam is a small protocol the pipeline calls; the defaults cost nothing (the gate allows
every retry, the throttle feedback penalises the limiter and lets the retry layer decide).
Observing is not a protocol of its own: every event of a call goes to the client's
:class:`~kuaishou_mp._pipeline._observe.Observer`, which hands the public hook events
(:mod:`kuaishou_mp.hooks`) to the client's hooks; anything internal that wants to watch
attempts is a :class:`~kuaishou_mp.Hooks` as well.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import RateLimitedError
from ..ratelimit import Limiter
from ._request import Request

__all__ = [
    "AllowEveryRetry",
    "PenalizeLimiter",
    "RetryGate",
    "ThrottleFeedback",
]


class RetryGate(Protocol):
    """Client-wide say over retries (a retry budget, an outage circuit)."""

    def allow_retry(self, request: Request, failure: BaseException) -> bool:
        """Asked just before a retry would start, after the policy allowed it."""


class ThrottleFeedback(Protocol):
    """What the limiter layer does when the platform answered "throttled"."""

    async def throttled(self, request: Request, error: RateLimitedError) -> bool:
        """Report the throttling; ``True`` sends the call back through the limiter (spending
        no retry attempt), ``False`` hands ``error`` on to the retry layer."""


class AllowEveryRetry:
    """The default gate: the retry policy alone decides."""

    __slots__ = ()

    def allow_retry(self, request: Request, failure: BaseException) -> bool:
        """Always ``True``."""
        return True


class PenalizeLimiter:
    """The default feedback: slow the authorizer's limiter down, then let the retry layer decide."""

    __slots__ = ("limiter",)

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    async def throttled(self, request: Request, error: RateLimitedError) -> bool:
        """Penalise ``request.app_id`` in the limiter; never re-admit."""
        if request.app_id is not None:
            await self.limiter.penalize(request.app_id)
        return False
