"""One suite, two limiters: the in-process GCRA and the Redis script must behave alike.

Both take their constants from one derivation (``kuaishou_mp._rate_params``); these tests pin
the behaviour that derivation feeds, on the real clock (Redis time for the Redis limiter), with
margins wide enough for a loaded machine: exactness of the rate and burst, the global limit,
independence of keys, slow-down on penalties, the floor, and recovery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from redis_support import max_in_window, unique_prefix

from kuaishou_mp import InProcessLimiter, RateLimit
from kuaishou_mp.redis import RedisLimiter

# Seconds by which a caller may resume after its slot on a loaded machine.
JITTER = 0.05

AnyLimiter = InProcessLimiter | RedisLimiter
MakeLimiter = Callable[[RateLimit], AnyLimiter]


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[MakeLimiter]:
    """Build a limiter of the parametrized kind; every one built is closed afterwards."""
    built: list[AnyLimiter] = []

    def make(rate_limit: RateLimit) -> AnyLimiter:
        limiter: AnyLimiter
        if request.param == "in-process":
            limiter = rate_limit.build()
        else:
            # No safety margin: the suite checks the exact rate, as the in-process one enforces.
            limiter = RedisLimiter.from_url(
                request.getfixturevalue("redis_url"),
                rate_limit,
                component_app_id="ks_conformance",
                prefix=unique_prefix(),
                safety_margin=0,
            )
        built.append(limiter)
        return limiter

    yield make
    for limiter in built:
        await limiter.aclose()


async def _admissions(limiter: AnyLimiter, keys: list[str]) -> list[float]:
    """Acquire once per key (in this order, concurrently); the times each was admitted."""
    times: list[float] = []

    async def one(key: str) -> None:
        await limiter.acquire(key)
        times.append(time.monotonic())

    await asyncio.gather(*(one(k) for k in keys))
    return times


async def test_rate_and_burst_hold_for_one_key(make_limiter: MakeLimiter) -> None:
    rate, burst, n = 20.0, 3, 34
    limiter = make_limiter(RateLimit(per_authorizer_qps=rate, burst=burst))
    start = time.monotonic()
    times = await _admissions(limiter, ["ks_one"] * n)
    # Fewer than rate + burst in any one-second window (less the jitter of waking up, since
    # these are the times the callers resumed); the run cannot be faster than the burst plus
    # one interval per further call.
    assert max_in_window(times, 1.0 - JITTER) < rate + burst
    assert max(times) - start >= (n - burst) / rate - 0.02
    # The burst itself goes at once.
    assert sorted(times)[burst - 1] - start < 0.5


async def test_keys_do_not_wait_for_each_other(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(RateLimit(per_authorizer_qps=1.0))
    start = time.monotonic()
    await _admissions(limiter, [f"ks_k{i}" for i in range(20)])
    # At 1/s per key, a key waiting for another would take seconds.
    assert time.monotonic() - start < 0.9


async def test_the_global_limit_caps_all_keys_together(make_limiter: MakeLimiter) -> None:
    g, n = 20.0, 30
    limiter = make_limiter(RateLimit(per_authorizer_qps=None, global_qps=g))
    start = time.monotonic()
    times = await _admissions(limiter, [f"ks_g{i}" for i in range(n)])
    assert max_in_window(times, 1.0 - JITTER) <= g
    assert max(times) - start >= (n - 1) / g - 0.02


async def test_a_penalty_slows_the_key_once_and_only_that_key(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(RateLimit(per_authorizer_qps=10.0))
    assert await limiter.current_rate("ks_p") == 10.0
    await limiter.penalize("ks_p")
    # A second 400002 from a call already in flight (within one interval) counts once.
    await limiter.penalize("ks_p")
    assert await limiter.current_rate("ks_p") == 5.0
    assert await limiter.current_rate("ks_other") == 10.0


async def test_penalties_stop_at_the_floor(make_limiter: MakeLimiter) -> None:
    rate = 1000.0
    limiter = make_limiter(RateLimit(per_authorizer_qps=rate, min_factor=0.05))
    for _ in range(8):  # 0.5 ** 8 is below the floor
        await limiter.penalize("ks_f")
        await asyncio.sleep(0.03)  # longer than one slowed interval (20 ms at the floor)
    assert await limiter.current_rate("ks_f") == pytest.approx(rate * 0.05)


async def test_a_quiet_key_recovers_step_by_step(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(
        RateLimit(per_authorizer_qps=8.0, recovery_after=0.5, recovery_step=1.25)
    )
    await limiter.penalize("ks_r")
    assert await limiter.current_rate("ks_r") == 4.0
    await asyncio.sleep(0.7)  # one step: in [0.5, 1.0) seconds after the penalty
    assert await limiter.current_rate("ks_r") == pytest.approx(5.0)


async def test_penalties_are_ignored_without_adaptivity(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(RateLimit(per_authorizer_qps=10.0, adaptive=False))
    await limiter.penalize("ks_n")
    assert await limiter.current_rate("ks_n") == 10.0


async def test_no_per_authorizer_limit_means_no_rate(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(RateLimit(per_authorizer_qps=None, global_qps=50.0))
    await limiter.penalize("ks_none")
    assert await limiter.current_rate("ks_none") is None
