"""The learned component-wide rate shared through Redis, against a real redis-server.

Two limiters on one Redis stand in for two processes; the script runs on Redis time, so the
waits below are real, with margins for a loaded machine.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from typing import Any

import pytest
from redis_support import BlackHole, unique_prefix

from kuaishou_mp import AttemptStart, Authorizer, Client, Hooks, RateLimit
from kuaishou_mp._component_rate import BETA, MEASURED_BETA, SAME_LIMIT
from kuaishou_mp._redis_learned import SharedRate
from kuaishou_mp.redis import RedisLimiter
from kuaishou_mp.testing import FakeKuaishou

pytestmark = pytest.mark.redis

CID = "ks_component_shared"


def limiter(url: str, prefix: str, **kwargs: Any) -> RedisLimiter:
    return RedisLimiter.from_url(url, RateLimit(), component_app_id=CID, prefix=prefix, **kwargs)


async def send(shared: SharedRate, calls: int, got_through: int = 1) -> None:
    """Make ``calls`` sends as a process does: each waits for the slot it booked."""
    for _ in range(calls):
        answer = await shared.pace(got_through=got_through)
        assert answer is not None
        await asyncio.sleep(answer[0])


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
        for i in range(110):  # 110 sent, 100 answers in so far
            await shared.pace(got_through=int(i < 100))
        assert await shared.throttled(0.0) == pytest.approx(100.0, rel=0.02)
        # Late answers of the full window (reported with a throttle, as at a run's tail, when
        # no send carries them): the capacity measured grows, no decrease.
        await shared.report(5)  # a process that stopped sending reports alone
        assert await shared.throttled(0.0, got_through=5) == pytest.approx(110.0, rel=0.02)
        await asyncio.sleep(1.05)  # past the hold-off
        await send(shared, 100)
        rate = await shared.throttled(0.0)
        assert rate is not None
        assert rate < 110.0 * (BETA + 0.05)
    finally:
        await lim.aclose()


async def test_a_probe_that_finds_the_shared_limit_again_stays_at_it(redis_url: str) -> None:
    lim = limiter(redis_url, unique_prefix())
    shared = lim.shared_learned_rate
    try:
        for _ in range(100):
            await shared.pace(got_through=1)
        first = await shared.throttled(0.0)
        assert first == pytest.approx(MEASURED_BETA * 100.0, rel=0.02)
        await asyncio.sleep(2.5)  # the curve is past its flat top (K = 1.4 s), probing
        answer = await shared.pace()
        assert answer is not None
        assert answer[1] is not None
        assert answer[1] > 100.0
        # Two seconds of steady sending along the curve, every answer through: the last
        # window got the limit of the last decrease (or a little more) through again.
        await send(shared, 200)
        again = await shared.throttled(0.0)
        assert again is not None
        # Kept at what got through (beta would give less than 80).
        assert MEASURED_BETA * SAME_LIMIT * 100.0 <= again < 120.0
    finally:
        await lim.aclose()


async def test_sends_booked_ahead_count_when_their_slots_come(redis_url: str) -> None:
    lim = limiter(redis_url, unique_prefix())
    shared = lim.shared_learned_rate
    try:
        await send(shared, 100)  # nothing learned: no waits
        assert await shared.throttled(0.0) == pytest.approx(MEASURED_BETA * 100.0, rel=0.02)
        await asyncio.sleep(2.05)  # past the hold-off; two windows without a send
        # 100 slots booked at once, a second of them ahead: a throttle now finds the window
        # nearly empty, because the platform has seen one or two of them so far. Counted
        # when booked, they would read as the same 100 calls/s got through again, and the
        # rate would stay at 99.
        for _ in range(100):
            await shared.pace(got_through=1)
        rate = await shared.throttled(0.0)
    finally:
        await lim.aclose()
    assert rate is not None
    assert rate < 10.0


async def test_a_closing_client_reports_its_last_answers(redis_url: str, rdb: Any) -> None:
    prefix = unique_prefix()
    async with FakeKuaishou() as fake:
        app = fake.add_authorizer()
        client = Client(
            fake.component_app_id, base_url=fake.base_url, rate_limit=limiter(redis_url, prefix)
        )
        async with client:
            for _ in range(5):
                await client.app_info(Authorizer(app.app_id, app.access_token))
    # Each pace carries the answers since the one before; the fifth answer came with the close.
    keys = [key async for key in rdb.scan_iter(f"{prefix}*learned*")]
    assert len(keys) == 1
    assert int(await rdb.hget(keys[0], "g")) == 5
    assert 0 < await rdb.pttl(keys[0]) <= 2000  # nothing learned: gone after two windows


async def test_answers_reported_after_the_counts_expired_do_not_leave_a_key_forever(
    redis_url: str, rdb: Any
) -> None:
    prefix = unique_prefix()
    lim = limiter(redis_url, prefix)
    try:
        await lim.shared_learned_rate.report(3)
    finally:
        await lim.aclose()
    keys = [key async for key in rdb.scan_iter(f"{prefix}*learned*")]
    assert len(keys) == 1
    assert 0 < await rdb.pttl(keys[0]) <= 2000


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
    """The learned rates the client reported on its attempts."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_attempt_start(self, event: AttemptStart) -> None:
        if event.learned_rate is not None:
            self.rates.append(event.learned_rate)


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
    assert all(all(ok) for ok in oks)  # throttling cost no authorizer
    # Both paced against the one rate in Redis, learned near the platform's limit. The
    # median of the rates each client's attempts saw: the curve moves between attempts, and
    # a run's last windows (one client done, answers in flight) measure less than the rest.
    rates = [statistics.median(hook.rates) for hook in seen]
    assert rates[0] == pytest.approx(rates[1], rel=0.5)
    assert all(40 < r < 150 for r in rates)
