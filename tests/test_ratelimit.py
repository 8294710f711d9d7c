"""Tests for kuaishou_mp.ratelimit, all on virtual time: nothing here really sleeps.

Most tests run on ``VirtualLoop``, an asyncio event loop whose clock jumps straight to the next
timer whenever nothing is ready, so the limiter runs with the real ``asyncio.sleep`` and real
task scheduling, but a minute of waiting takes microseconds. Tests of the non-suspending fast
path drive ``acquire`` by hand with ``coro.send(None)`` on a plain fake clock.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import selectors
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from kuaishou_mp.ratelimit import InProcessLimiter, Limiter, RateLimit

T = TypeVar("T")
EPS = 1e-9


class _VirtualSelector(selectors.SelectSelector):
    """Never blocks: a wait for ``timeout`` seconds advances the virtual clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout:
            self.now += timeout
        elif not ready and timeout is None:
            raise RuntimeError("deadlock: every task waits and no timer is scheduled")
        return ready


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


def run(main: Coroutine[Any, Any, T]) -> T:
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()


def now() -> float:
    return asyncio.get_running_loop().time()


async def at(t: float) -> None:
    if t > now():
        await asyncio.sleep(t - now())


def build(**kwargs: Any) -> InProcessLimiter:
    """A limiter on the running virtual loop's clock, sleeping with the real asyncio.sleep."""
    return RateLimit(**kwargs).build(clock=asyncio.get_running_loop().time)


async def call(lim: InProcessLimiter, key: str, when: float, log: list[tuple[str, float]]) -> None:
    await at(when)
    await lim.acquire(key)
    log.append((key, now()))


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its value, failing if it suspends even once."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("acquire suspended")


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def no_sleep(delay: float) -> None:
    raise AssertionError(f"slept {delay}")


def assert_exact(times: Sequence[float], rate: float, burst: int) -> None:
    """Every half-open window of 1 s holds < rate + burst admissions; burst 1: spaced >= 1/rate."""
    ts = sorted(times)
    # The fullest window can always be taken to start at an admission.
    j = 0
    for i, start in enumerate(ts):
        while j < len(ts) and ts[j] < start + 1.0 - EPS:
            j += 1
        assert j - i < rate + burst, f"{j - i} admissions in [{start}, {start + 1})"
        if burst == 1:
            assert j - i <= math.ceil(rate)
    if burst == 1:
        gaps = [b - a for a, b in itertools.pairwise(ts)]
        assert min(gaps, default=math.inf) >= 1.0 / rate - EPS


# --- fast path ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        RateLimit(),
        RateLimit(per_authorizer_qps=2.0, burst=3, global_qps=1000.0, global_burst=5),
        RateLimit(per_authorizer_qps=None, global_qps=10.0, global_burst=2),
        RateLimit(per_authorizer_qps=None),
    ],
)
def test_uncontended_acquire_does_not_suspend(config: RateLimit) -> None:
    clock = FakeClock()
    lim = config.build(clock=clock, sleep=no_sleep)
    for i in range(200):
        clock.t = i * 10.0
        run_now(lim.acquire(f"app{i % 7}"))
        run_now(lim.acquire(f"fresh{i}"))


def test_burst_calls_go_back_to_back_without_suspending() -> None:
    async def main() -> None:
        lim = build(per_authorizer_qps=2.0, burst=3)
        for _ in range(3):
            run_now(lim.acquire("a"))
        with pytest.raises(AssertionError, match="suspended"):
            run_now(lim.acquire("a"))
        await at(0.5)  # one interval later, exactly one more slot
        run_now(lim.acquire("a"))
        with pytest.raises(AssertionError, match="suspended"):
            run_now(lim.acquire("a"))

    run(main())


def test_without_per_authorizer_limit_nothing_is_limited_or_stored() -> None:
    clock = FakeClock()
    lim = RateLimit(per_authorizer_qps=None).build(clock=clock, sleep=no_sleep)
    for _ in range(10_000):
        run_now(lim.acquire("same"))
    run_now(lim.penalize("same"))
    run_now(lim.acquire("same"))
    assert len(lim) == 0
    assert run_now(lim.current_rate("same")) is None


# --- exactness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "burst"), [(5.0, 1), (3.7, 1), (10.0, 4), (2.5, 3), (0.5, 2)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_arrivals_never_exceed_rate_plus_burst(rate: float, burst: int, seed: int) -> None:
    rnd = random.Random(seed)

    async def main() -> list[float]:
        lim = build(per_authorizer_qps=rate, burst=burst)
        log: list[tuple[str, float]] = []
        # Arrivals in clusters, some idle gaps so the burst allowance refills.
        arrivals = [rnd.choice([0, 10, 25, 40]) + rnd.expovariate(rate / 2) for _ in range(300)]
        await asyncio.gather(*(call(lim, "k", t, log) for t in arrivals))
        return [t for _, t in log]

    times = run(main())
    assert len(times) == 300
    assert_exact(times, rate, burst)


@pytest.mark.parametrize(("rate", "burst"), [(4.0, 1), (2.0, 3)])
def test_simultaneous_callers_get_exactly_the_gcra_schedule(rate: float, burst: int) -> None:
    async def main() -> list[float]:
        lim = build(per_authorizer_qps=rate, burst=burst)
        log: list[tuple[str, float]] = []
        await asyncio.gather(*(call(lim, "k", 0.0, log) for _ in range(10)))
        return [t for _, t in log]

    times = run(main())
    # The first `burst` go at once, then one per interval: no slower than the limit either.
    expected = [max(0, i - burst + 1) / rate for i in range(10)]
    assert times == pytest.approx(expected, abs=EPS)


def test_burst_refills_after_idle() -> None:
    async def main() -> list[float]:
        lim = build(per_authorizer_qps=2.0, burst=3)
        log: list[tuple[str, float]] = []
        await asyncio.gather(
            *(call(lim, "k", 0.0, log) for _ in range(5)),
            *(call(lim, "k", 10.0, log) for _ in range(4)),
        )
        return [t for _, t in log]

    assert run(main()) == pytest.approx([0, 0, 0, 0.5, 1.0, 10, 10, 10, 10.5], abs=EPS)


def test_keys_are_limited_independently() -> None:
    async def main() -> list[tuple[str, float]]:
        lim = build(per_authorizer_qps=1.0)
        log: list[tuple[str, float]] = []
        await asyncio.gather(*(call(lim, k, 0.0, log) for k in ["a", "b", "a", "b"]))
        return log

    assert sorted(run(main())) == [("a", 0.0), ("a", 1.0), ("b", 0.0), ("b", 1.0)]


# --- FIFO --------------------------------------------------------------------------------------


def test_waiters_are_admitted_in_arrival_order() -> None:
    async def main() -> list[tuple[str, float]]:
        lim = build(per_authorizer_qps=1.0)
        log: list[tuple[str, float]] = []

        async def named(name: str, when: float) -> None:
            await at(when)
            await lim.acquire("k")
            log.append((name, now()))

        # Late arrivals interleave with a queue that is already long.
        arrivals = {"a": 0.0, "b": 0.1, "c": 0.15, "d": 0.7, "e": 1.5, "f": 1.6, "g": 4.2}
        await asyncio.gather(*(named(n, t) for n, t in reversed(arrivals.items())))
        return log

    log = run(main())
    assert [n for n, _ in log] == list("abcdefg")
    assert [t for _, t in log] == pytest.approx([0, 1, 2, 3, 4, 5, 6], abs=EPS)


# --- cancellation ------------------------------------------------------------------------------


def test_cancelled_waiter_raises_promptly_and_others_keep_their_order() -> None:
    async def main() -> tuple[list[tuple[str, float]], float]:
        lim = build(per_authorizer_qps=1.0)
        log: list[tuple[str, float]] = []
        tasks = {}
        for name in "abcd":
            tasks[name] = asyncio.create_task(call(lim, "k", 0.0, log), name=name)
            await asyncio.sleep(0)
        await at(0.5)
        tasks["c"].cancel()
        cancelled_at = math.nan
        try:
            await tasks["c"]
        except asyncio.CancelledError:
            cancelled_at = now()
        await asyncio.gather(tasks["a"], tasks["b"], tasks["d"])
        return log, cancelled_at

    log, cancelled_at = run(main())
    assert cancelled_at == 0.5
    # c's turn was never taken, so d goes in c's place and spacing still holds.
    assert [t for _, t in log] == pytest.approx([0, 1, 2], abs=EPS)


def test_cancelled_last_waiter_gives_its_slot_back() -> None:
    async def main() -> list[float]:
        lim = build(per_authorizer_qps=1.0)
        await lim.acquire("k")
        waiter = asyncio.create_task(lim.acquire("k"))
        await at(0.3)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        log: list[tuple[str, float]] = []
        await asyncio.gather(call(lim, "k", 0.6, log), call(lim, "k", 0.7, log))
        return [t for _, t in log]

    assert run(main()) == pytest.approx([1.0, 2.0], abs=EPS)


def test_cancelling_the_waiter_at_the_head_hands_over_to_the_next() -> None:
    async def main() -> list[tuple[str, float]]:
        lim = build(per_authorizer_qps=1.0)
        log: list[tuple[str, float]] = []
        await lim.acquire("k")
        head = asyncio.create_task(lim.acquire("k"))
        await asyncio.sleep(0)
        tail = asyncio.create_task(call(lim, "k", 0.0, log))
        await at(0.5)
        head.cancel()
        with pytest.raises(asyncio.CancelledError):
            await head
        await tail
        return log

    assert run(main()) == [("k", 1.0)]


def test_waiter_cancelled_right_after_being_handed_the_turn_passes_it_on() -> None:
    async def main() -> list[tuple[str, float]]:
        lim = build(per_authorizer_qps=1.0)
        log: list[tuple[str, float]] = []
        await lim.acquire("k")
        later: dict[str, asyncio.Task[None]] = {}

        async def first() -> None:
            await lim.acquire("k")
            log.append(("first", now()))
            # The turn has just been handed to "second", which has not run yet.
            later["second"].cancel()

        tasks = [asyncio.create_task(first())]
        await asyncio.sleep(0)
        later["second"] = asyncio.create_task(lim.acquire("k"))
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(call(lim, "k", 0.0, log)))
        await asyncio.gather(*tasks)
        with pytest.raises(asyncio.CancelledError):
            await later["second"]
        return log

    assert run(main()) == [("first", 1.0), ("k", 2.0)]


def test_cancelled_global_reservation_is_given_back_only_when_last() -> None:
    async def main(someone_behind: bool) -> list[tuple[str, float]]:
        lim = build(per_authorizer_qps=1000.0, global_qps=1.0)
        log: list[tuple[str, float]] = []
        await lim.acquire("a")
        b = asyncio.create_task(lim.acquire("b"))  # reserves global slot 1
        others = []
        if someone_behind:
            others.append(asyncio.create_task(call(lim, "d", 0.2, log)))  # slot 2
        await at(0.5)
        b.cancel()
        with pytest.raises(asyncio.CancelledError):
            await b
        await asyncio.gather(*others, call(lim, "c", 0.6, log))
        return log

    assert run(main(someone_behind=False)) == [("c", 1.0)]
    # d keeps its place; b's slot goes unused rather than letting anyone in early.
    assert run(main(someone_behind=True)) == [("d", 2.0), ("c", 3.0)]


def test_random_cancellations_never_over_admit() -> None:
    rnd = random.Random(7)

    async def main() -> tuple[list[tuple[str, float]], int]:
        lim = build(per_authorizer_qps=3.0, burst=2, global_qps=5.0)
        log: list[tuple[str, float]] = []
        tasks = [
            asyncio.create_task(call(lim, rnd.choice("abc"), rnd.uniform(0, 5), log))
            for _ in range(300)
        ]
        for task in rnd.sample(tasks, 100):
            await at(now() + rnd.expovariate(10))
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return log, sum(isinstance(r, asyncio.CancelledError) for r in results)

    log, cancelled = run(main())
    assert cancelled > 50
    assert len(log) + cancelled == 300
    assert_exact([t for _, t in log], rate=5.0, burst=1)
    for key in "abc":
        assert_exact([t for k, t in log if k == key], rate=3.0, burst=2)


# --- global limit ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_global_limit_across_keys_keeps_both_limits_exact(seed: int) -> None:
    rnd = random.Random(seed)
    keys = [f"app{i}" for i in range(8)]

    async def main() -> dict[str, list[tuple[float, float]]]:
        lim = build(per_authorizer_qps=2.0, global_qps=5.0)
        log: dict[str, list[tuple[float, float]]] = defaultdict(list)

        async def one(key: str, when: float) -> None:
            await at(when)
            await lim.acquire(key)
            log[key].append((when, now()))

        await asyncio.gather(*(one(rnd.choice(keys), rnd.uniform(0, 20)) for _ in range(400)))
        return log

    log = run(main())
    admitted = sorted(t for calls in log.values() for _, t in calls)
    assert len(admitted) == 400
    assert_exact(admitted, rate=5.0, burst=1)
    assert admitted[-1] < 399 / 5.0 + 5.0  # not needlessly slower than the global limit
    for calls in log.values():
        # Per key, on the real admission times (after the global wait), and in arrival order.
        assert_exact([t for _, t in calls], rate=2.0, burst=1)
        assert calls == sorted(calls)


def test_global_burst_and_global_only_limiting() -> None:
    async def main() -> list[float]:
        lim = build(per_authorizer_qps=None, global_qps=2.0, global_burst=2)
        log: list[tuple[str, float]] = []
        await asyncio.gather(*(call(lim, f"app{i}", 0.0, log) for i in range(5)))
        return [t for _, t in log]

    assert run(main()) == pytest.approx([0, 0, 0.5, 1.0, 1.5], abs=EPS)


# --- bounded memory ----------------------------------------------------------------------------


def test_a_million_distinct_keys_leave_bounded_state() -> None:
    t = [0.0]
    lim = RateLimit(global_qps=1e6).build(clock=lambda: t[0], sleep=no_sleep)
    most = 0
    for i in range(1_000_000):
        t[0] = i * 1e-4  # 10,000 new keys a second; each stays busy 0.2 s
        run_now(lim.acquire(f"app{i}"))
        if len(lim) > most:
            most = len(lim)
    assert most <= 5_000  # about 2,000 keys are busy at any moment


def test_penalized_key_is_kept_until_recovered_then_dropped() -> None:
    clock = FakeClock()
    lim = RateLimit(per_authorizer_qps=5.0).build(clock=clock, sleep=no_sleep)
    run_now(lim.penalize("slow"))
    assert run_now(lim.current_rate("slow")) == 2.5
    for i in range(3_000):  # several sweeps while "slow" is idle but not recovered
        clock.t = 1.0 + i * 1e-4
        run_now(lim.acquire(f"app{i}"))
    clock.t = 1.9
    assert run_now(lim.current_rate("slow")) == 2.5
    # Long after full recovery, with every other key idle: one sweep leaves only the newest.
    for i in range(10_000):
        clock.t = 100.0 + i
        run_now(lim.acquire(f"late{i}"))
        if len(lim) == 1:
            break
    else:
        pytest.fail("the penalized key's state was never dropped")


# --- adaptive ----------------------------------------------------------------------------------


def test_penalize_slows_the_key_and_it_recovers_gradually() -> None:
    async def main() -> tuple[list[float], list[float | None]]:
        lim = build(per_authorizer_qps=5.0)
        log: list[tuple[str, float]] = []
        await lim.acquire("k")  # TAT 0.2
        await at(0.05)
        await lim.penalize("k")  # factor 0.5: interval 0.4, TAT 0.2 + 0.4
        await asyncio.gather(*(call(lim, "k", 0.1, log) for _ in range(3)))
        rates = []
        for t in [1.9, 2.1, 4.1, 6.1, 8.1, 20.0]:
            await at(t)
            rates.append(await lim.current_rate("k"))
        await asyncio.gather(*(call(lim, "k", 20.0, log) for _ in range(3)))
        await lim.penalize("other")
        return [t for _, t in log], rates

    times, rates = run(main())
    assert times == pytest.approx([0.6, 1.0, 1.4, 20.0, 20.2, 20.4], abs=EPS)
    assert rates == pytest.approx([2.5, 3.125, 3.90625, 4.8828125, 5.0, 5.0])


def test_recovering_key_is_paced_at_its_current_rate() -> None:
    async def main() -> list[float]:
        lim = build(per_authorizer_qps=5.0)
        await lim.penalize("k")  # factor 0.5 at t=0
        log: list[tuple[str, float]] = []
        await asyncio.gather(*(call(lim, "k", 2.5, log) for _ in range(3)))  # factor 0.625
        return [t for _, t in log]

    assert run(main()) == pytest.approx([2.5, 2.82, 3.14], abs=EPS)


def test_penalty_reaches_a_waiter_already_in_line() -> None:
    async def main() -> float:
        lim = build(per_authorizer_qps=5.0)
        await lim.acquire("k")
        log: list[tuple[str, float]] = []
        waiter = asyncio.create_task(call(lim, "k", 0.0, log))
        await at(0.1)
        await lim.penalize("k")
        await waiter
        return log[0][1]

    assert run(main()) == pytest.approx(0.6, abs=EPS)  # not 0.2: TAT moved to 0.2 + 0.4


def test_penalties_in_quick_succession_count_once_and_stop_at_the_floor() -> None:
    clock = FakeClock()
    lim = RateLimit(per_authorizer_qps=5.0).build(clock=clock, sleep=no_sleep)
    for _ in range(50):  # a whole window of in-flight calls failing together
        run_now(lim.penalize("k"))
    assert run_now(lim.current_rate("k")) == 2.5
    clock.t = 0.39  # still within one current interval (0.4 s)
    run_now(lim.penalize("k"))
    assert run_now(lim.current_rate("k")) == 2.5
    clock.t = 0.4
    run_now(lim.penalize("k"))
    assert run_now(lim.current_rate("k")) == 1.25


def test_repeated_penalties_stop_at_the_floor() -> None:
    clock = FakeClock()
    lim = RateLimit(per_authorizer_qps=5.0, recovery_after=1e6).build(clock=clock, sleep=no_sleep)
    for _ in range(10):
        rate = run_now(lim.current_rate("k"))
        assert rate is not None
        clock.t += 1.01 / rate  # just past one current interval: every penalty counts
        run_now(lim.penalize("k"))
    assert run_now(lim.current_rate("k")) == pytest.approx(0.25)  # min_factor 0.05


def test_penalize_is_ignored_when_not_adaptive() -> None:
    clock = FakeClock()
    lim = RateLimit(adaptive=False).build(clock=clock, sleep=no_sleep)
    run_now(lim.penalize("k"))
    assert run_now(lim.current_rate("k")) == 5.0
    run_now(lim.acquire("k"))


def test_penalty_wipes_the_burst_so_the_next_call_waits() -> None:
    async def main() -> None:
        lim = build(per_authorizer_qps=8.0, burst=5)
        run_now(lim.acquire("k"))
        await lim.penalize("k")
        with pytest.raises(AssertionError, match="suspended"):
            run_now(lim.acquire("k"))
        await at(0.25)  # one new interval (factor 0.5)
        run_now(lim.acquire("k"))

    run(main())


# --- configuration and protocol ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"per_authorizer_qps": 0}, "per_authorizer_qps"),
        ({"per_authorizer_qps": -1.0}, "per_authorizer_qps"),
        ({"per_authorizer_qps": math.nan}, "per_authorizer_qps"),
        ({"per_authorizer_qps": math.inf}, "per_authorizer_qps"),
        ({"per_authorizer_qps": "5"}, "per_authorizer_qps"),
        ({"per_authorizer_qps": True}, "per_authorizer_qps"),
        ({"burst": 0}, "burst"),
        ({"burst": 1.5}, "burst"),
        ({"global_qps": 0.0}, "global_qps"),
        ({"global_burst": 0}, "global_burst"),
        ({"slow_factor": 0.0}, "slow_factor"),
        ({"slow_factor": 1.0}, "slow_factor"),
        ({"min_factor": 0.0}, "min_factor"),
        ({"min_factor": 1.5}, "min_factor"),
        ({"recovery_after": 0.0}, "recovery_after"),
        ({"recovery_after": math.inf}, "recovery_after"),
        ({"recovery_step": 1.0}, "recovery_step"),
        ({"recovery_step": math.nan}, "recovery_step"),
    ],
)
def test_invalid_configuration_is_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"RateLimit\.{field} must be"):
        RateLimit(**kwargs)


def test_defaults_and_edges_are_accepted() -> None:
    assert RateLimit() == RateLimit(5.0, 1, None, 1, True, 0.5, 0.05, 2.0, 1.25)
    RateLimit(per_authorizer_qps=None, global_qps=0.01, min_factor=1.0, burst=100)


async def test_in_process_limiter_implements_the_protocol() -> None:
    lim = RateLimit().build()
    assert isinstance(lim, Limiter)
    assert isinstance(InProcessLimiter(RateLimit()), Limiter)
    await lim.acquire("k")
    await lim.aclose()
    assert len(lim) == 1


def test_try_acquire_takes_a_free_slot_and_nothing_else() -> None:
    clock = FakeClock()
    lim = RateLimit(per_authorizer_qps=2, burst=1).build(clock=clock)
    assert lim.try_acquire("a")  # free: taken
    assert not lim.try_acquire("a")  # the next slot is 0.5 s away
    assert lim.try_acquire("b")  # another authorizer is independent
    clock.t = 0.5
    # The refused try took nothing: the slot at 0.5 s is still there, and only once.
    assert lim.try_acquire("a")
    assert not lim.try_acquire("a")


def test_try_acquire_never_jumps_a_waiter_in_line() -> None:
    async def main() -> None:
        lim = build(per_authorizer_qps=2, burst=1)
        assert lim.try_acquire("a")
        tries: list[bool] = []
        # Runs at 0.5 s just before the waiter wakes (its timer is scheduled after this one):
        # the slot is due, but it is the waiter's.
        asyncio.get_running_loop().call_at(0.5, lambda: tries.append(lim.try_acquire("a")))
        log: list[tuple[str, float]] = []
        await call(lim, "a", 0.0, log)
        assert tries == [False]
        assert log == [("a", 0.5)]

    run(main())


def test_try_acquire_respects_the_global_limit() -> None:
    clock = FakeClock()
    lim = RateLimit(per_authorizer_qps=None, global_qps=1).build(clock=clock)
    assert lim.try_acquire("a")
    assert not lim.try_acquire("b")
    clock.t = 1.0
    assert lim.try_acquire("b")
