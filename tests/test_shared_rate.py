"""The learned component-wide rate shared through Redis, against a real redis-server.

Two limiters on one Redis stand in for two processes; the script runs on Redis time, so the
waits below are real, with margins for a loaded machine.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from redis_support import BlackHole, unique_prefix

from kuaishou_mp import AttemptStart, Authorizer, Client, Hooks, RateLimit
from kuaishou_mp._component_rate import BETA
from kuaishou_mp.redis import RedisLimiter
from kuaishou_mp.testing import FakeKuaishou

pytestmark = pytest.mark.redis

CID = "ks_component_shared"


def limiter(url: str, prefix: str, **kwargs: Any) -> RedisLimiter:
    return RedisLimiter.from_url(url, RateLimit(), component_app_id=CID, prefix=prefix, **kwargs)


async def test_nothing_is_paced_before_any_throttle(redis_url: str) -> None:
    lim = limiter(redis_url, unique_prefix())
    try:
        answers = [await lim.shared_learned_rate.pace() for _ in range(20)]
    finally:
        await lim.aclose()
    assert answers == [(0.0, None)] * 20


async def test_the_first_throttle_paces_every_process_at_the_capacity_it_measured(
    redis_url: str,
) -> None:
    prefix = unique_prefix()
    a, b = limiter(redis_url, prefix), limiter(redis_url, prefix)
    try:
        for i in range(200):  # the component sent 200 calls in its window...
            await (a if i % 2 else b).shared_learned_rate.pace(got_through=i % 2)
        # ...of which half got through (each process reports its own): 100 calls/s.
        rate = await a.shared_learned_rate.throttled(0.0)
        assert rate == pytest.approx(100.0, rel=0.02)
        # The other process paces at the same rate: its slots are 10 ms apart. A slot is
        # "now + wait" on Redis's clock; the round trip brackets that "now" between the
        # local times before and after the call, whatever the machine's load.
        slots = []
        for _ in range(5):
            before = time.monotonic()
            answer = await b.shared_learned_rate.pace()
            after = time.monotonic()
            assert answer is not None
            wait, rate = answer
            assert rate == pytest.approx(100.0, rel=0.05)
            slots.append((before + wait, after + wait, wait))
        for (early_lo, early_hi, _), (late_lo, late_hi, late_wait) in itertools.pairwise(slots):
            assert late_hi - early_lo >= 0.0099, slots  # never closer than the rate allows
            if late_wait > 0:  # a slot in the future sits exactly one interval on
                assert late_lo - early_hi <= 0.0101, slots
    finally:
        await a.aclose()
        await b.aclose()


async def test_throttles_within_the_hold_off_count_once_and_later_ones_decrease(
    redis_url: str,
) -> None:
    prefix = unique_prefix()
    lim = limiter(redis_url, prefix)
    shared = lim.shared_learned_rate
    try:
        for _ in range(100):
            await shared.pace(got_through=1)
        assert await shared.throttled(0.0) == pytest.approx(100.0, rel=0.02)
        # Late answers of the full window: the capacity measured grows, no decrease.
        for _ in range(10):
            await shared.pace(got_through=1)
        assert await shared.throttled(0.0) == pytest.approx(110.0, rel=0.02)
        await asyncio.sleep(1.05)  # past the hold-off
        for _ in range(100):
            await shared.pace(got_through=1)
        rate = await shared.throttled(0.0)
        assert rate is not None
        assert rate < 110.0 * (BETA + 0.05)
    finally:
        await lim.aclose()


async def test_sending_resumes_when_the_reporters_window_has_room(redis_url: str) -> None:
    lim = limiter(redis_url, unique_prefix())
    shared = lim.shared_learned_rate
    try:
        for _ in range(50):
            await shared.pace(got_through=1)
        await shared.throttled(0.4)  # the reporter's window has room in 0.4 s
        answer = await shared.pace()
    finally:
        await lim.aclose()
    assert answer is not None
    assert 0.3 < answer[0] <= 0.4


async def test_an_unreachable_redis_answers_none_so_the_process_paces_itself() -> None:
    hole = BlackHole()
    url = await hole.start()
    lim = limiter(url, unique_prefix(), timeout=0.2)
    try:
        started = time.monotonic()
        assert await lim.shared_learned_rate.pace() is None  # one timeout (0.2 s)...
        first = time.monotonic() - started
        for _ in range(20):  # ...then Redis is left alone until the probe interval (5 s)
            assert await lim.shared_learned_rate.pace() is None
        assert await lim.shared_learned_rate.throttled(0.0) is None
        assert 0.15 < first < 1.0
        assert time.monotonic() - started - first < 0.1
    finally:
        await lim.aclose()
        await hole.close()


class LearnedRate(Hooks):
    """The learned rate the client reported on its last attempt."""

    rate: float | None = None

    def on_attempt_start(self, event: AttemptStart) -> None:
        self.rate = event.learned_rate


async def test_two_clients_learn_one_rate_against_one_platform_limit(redis_url: str) -> None:
    prefix = unique_prefix()
    seen = [LearnedRate(), LearnedRate()]
    async with FakeKuaishou(component_qps=100, record_requests=False) as fake:
        apps = [Authorizer(a.app_id, a.access_token) for a in fake.add_authorizers(400)]
        clients = [
            Client(
                fake.component_app_id,
                base_url=fake.base_url,
                rate_limit=limiter(redis_url, prefix),
                hooks=[hook],
            )
            for hook in seen
        ]

        async def run(client: Client, shard: list[Authorizer]) -> list[bool]:
            async with client, client.bulk_app_info(shard, concurrency=50) as results:
                return [r.ok async for r in results]

        oks = await asyncio.gather(*(run(c, apps[i::2]) for i, c in enumerate(clients)))
        rates = [hook.rate for hook in seen]
    assert all(all(ok) for ok in oks)  # throttling cost no authorizer
    # Both paced against the one rate in Redis, learned near the platform's limit. Each hook
    # holds the rate of its client's last attempt, and the curve moves between the two.
    assert all(r is not None for r in rates)
    assert rates[0] == pytest.approx(rates[1], rel=0.5)
    assert 30 < rates[0] < 150  # type: ignore[operator]
