"""The snapshot of a Redis limiter's counters (:attr:`kuaishou_mp.redis.RedisLimiter.stats`)."""

from __future__ import annotations

import attrs

__all__ = ["RedisLimiterStats"]


@attrs.frozen
class RedisLimiterStats:
    """A snapshot of a :class:`RedisLimiter`'s counters since it was created.

    Attributes:
        acquires: Calls to :meth:`RedisLimiter.acquire`.
        redis_acquires: Acquires decided by the Redis script.
        fallback_acquires: Acquires decided by the fallback policy while Redis was unavailable.
        waits: Acquires that had to wait for their slot.
        wait_seconds: Total seconds callers slept for their slot (Redis or local limiter).
        max_wait: Longest single wait, in seconds.
        redis_calls: Script calls that got an answer (acquire, penalize, current_rate).
        redis_seconds: Total round-trip time of those calls; divide by ``redis_calls``.
        max_redis_seconds: Slowest answered round trip.
        redis_errors: Script calls that failed or timed out.
        outages: Times the limiter switched from Redis to the fallback policy.
        using_redis: Whether the limiter currently uses Redis (``False`` during an outage).
    """

    acquires: int
    redis_acquires: int
    fallback_acquires: int
    waits: int
    wait_seconds: float
    max_wait: float
    redis_calls: int
    redis_seconds: float
    max_redis_seconds: float
    redis_errors: int
    outages: int
    using_redis: bool
