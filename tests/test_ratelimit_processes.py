"""Splitting one platform limit between processes with local limiters (docs/recipes/redis.md).

Each process's limiter is exact for its own rate: any one-second window holds fewer than
``rate + burst`` of its admissions, so with burst 1 at most ``ceil(rate)``. The processes are
independent, so in the worst case their fullest windows line up.
"""

from __future__ import annotations

import math

import pytest

from kuaishou_mp.ratelimit import RateLimit


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


async def admissions_in_first_second(rate: float, slack: float = -1e-9) -> int:
    """Admissions of one process calling one authorizer as fast as its limiter lets it, in
    ``[0, 1 + slack)`` (a positive slack stands for arrival jitter on the way)."""
    clock = Clock()
    limiter = RateLimit(per_authorizer_qps=rate).build(clock=clock, sleep=clock.sleep)
    times = []
    while clock.t < 1.0 + slack:
        await limiter.acquire("ks1")
        times.append(clock.t)
    return sum(t < 1.0 + slack for t in times)


async def test_a_fractional_share_lets_a_process_make_ceil_rate_calls_in_a_second() -> None:
    assert await admissions_in_first_second(2.5) == 3  # 0.0, 0.4, 0.8


@pytest.mark.parametrize(("limit", "processes"), [(5, 2), (5, 4), (500, 3), (7, 3)])
async def test_rate_over_processes_floored_with_a_margin_keeps_the_total_under_the_limit(
    limit: int, processes: int
) -> None:
    share = limit / processes
    if share != math.floor(share):
        # The naive split over-admits when the windows line up.
        assert processes * await admissions_in_first_second(share) > limit
    # An integer share is exact but has no slack: its next call lands on the window's end.
    assert processes * await admissions_in_first_second(math.floor(share), slack=1e-3) > limit
    # The recipe: floor the share, then keep 5% below it.
    recipe = math.floor(share) * 0.95
    assert processes * await admissions_in_first_second(recipe, slack=0.04) <= limit
