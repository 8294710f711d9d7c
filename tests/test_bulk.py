"""The bulk engine: lazy pull, exactly-once results, clean shutdown, progress."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kuaishou_mp._callstats import CallStats
from kuaishou_mp.bulk import (
    AuthorizerLike,
    BulkProgress,
    BulkResult,
    BulkRun,
    BulkSummary,
    run_bulk,
)
from kuaishou_mp.errors import (
    InvalidInputError,
    KuaishouError,
    RateLimitedError,
    TransportError,
)
from kuaishou_mp.models import Authorizer


def other_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


async def settle(rounds: int = 10) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
async def no_loop_errors() -> Any:
    """Fail a test whose run left the loop complaining (e.g. "Task was destroyed but pending")."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    yield
    gc.collect()
    await settle()
    loop.set_exception_handler(None)
    assert errors == []
    assert other_tasks() == set()


class Counting:
    """A sync source that counts how many items were pulled from it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pulled = 0

    def __iter__(self) -> Generator[str, None, None]:
        for i in range(self.n):
            self.pulled += 1
            yield f"app{i}"


async def echo(item: AuthorizerLike, stats: CallStats) -> str:
    stats.attempts += 1
    await asyncio.sleep(0)
    return item if isinstance(item, str) else item.app_id


async def collect(run: BulkRun[Any]) -> list[BulkResult[Any]]:
    return [r async for r in run]


class Tracker:
    """A call that blocks until released, recording starts, finishes and cancellations."""

    def __init__(self, free: frozenset[str] = frozenset()) -> None:
        self.free = free  # items that do not wait for the gate
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.running = 0
        self.peak = 0
        self.gate = asyncio.Event()

    async def __call__(self, item: AuthorizerLike, stats: CallStats) -> str:
        name = item if isinstance(item, str) else item.app_id
        self.started.append(name)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if name not in self.free:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(name)
            raise
        finally:
            self.running -= 1
        self.finished.append(name)
        return name


# -- results ------------------------------------------------------------------------------------


async def test_every_item_exactly_once_with_values_and_attempts() -> None:
    items: list[AuthorizerLike] = [f"app{i}" for i in range(300)]
    items.append(Authorizer("tok-app", "secret"))

    async def call(item: AuthorizerLike, stats: CallStats) -> str:
        app_id = item if isinstance(item, str) else item.app_id
        stats.attempts = 1 + len(app_id) % 3
        for _ in range(sum(map(ord, app_id)) % 4):  # uneven durations shuffle the order
            await asyncio.sleep(0)
        return app_id.upper()

    results = await collect(run_bulk(items, call, concurrency=17))

    assert Counter(map(id, (r.authorizer for r in results))) == Counter(map(id, items))
    for r in results:
        assert r.ok
        assert r.error is None
        assert r.value == r.app_id.upper()
        assert r.attempts == 1 + len(r.app_id) % 3
        assert r.duration >= 0
    in_order = [a if isinstance(a, str) else a.app_id for a in items]
    assert [r.app_id for r in results] != in_order  # streamed in completion order


async def test_kuaishou_error_becomes_a_failed_result_and_the_run_goes_on() -> None:
    class WithAttempts(TransportError):
        attempts = 4

    async def call(item: AuthorizerLike, stats: CallStats) -> int:
        n = int(str(item))
        if n % 5 == 0:
            stats.attempts = 3
            raise RateLimitedError("slow down", code=400002, app_id=str(item))
        if n % 7 == 0:
            raise WithAttempts("boom")  # stats untouched: attempts come from the error
        stats.attempts = 1
        return n * 2

    run = run_bulk((str(i) for i in range(1, 51)), call, concurrency=4)
    results = {r.app_id: r async for r in run}

    assert len(results) == 50
    r5, r7, r8 = results["5"], results["7"], results["8"]
    assert not r5.ok
    assert isinstance(r5.error, RateLimitedError)
    assert r5.value is None
    assert r5.attempts == 3
    assert r7.attempts == 4
    assert isinstance(r7.error, WithAttempts)
    with pytest.raises(RateLimitedError):
        r5.unwrap()
    assert r8.unwrap() == 16
    assert r8.attempts == 1

    summary = run.summary()
    # 10 multiples of 5, and 6 multiples of 7 that are not also multiples of 5 (35).
    assert (summary.total, summary.ok, summary.failed) == (50, 34, 16)
    assert summary.errors_by_class == {"RateLimitedError": 10, "WithAttempts": 6}


async def test_result_properties() -> None:
    err = TransportError("down")
    r1: BulkResult[int] = BulkResult(Authorizer("a1", "tok"), 5, None, 1, 0.1)
    r2: BulkResult[int] = BulkResult("a2", None, err, 2, 0.2)
    assert (r1.ok, r1.app_id, r1.unwrap()) == (True, "a1", 5)
    assert (r2.ok, r2.app_id) == (False, "a2")
    with pytest.raises(TransportError) as info:
        r2.unwrap()
    assert info.value is err
    with pytest.raises(AttributeError):
        r1.value = 6  # type: ignore[misc]
    assert "tok" not in repr(r1)


async def test_empty_source() -> None:
    run = run_bulk([], echo)
    assert await collect(run) == []
    assert run.summary().total == 0


@settings(max_examples=40, deadline=None)
@given(
    delays=st.lists(st.integers(min_value=0, max_value=3), min_size=0, max_size=60),
    fail_every=st.integers(min_value=1, max_value=5),
    concurrency=st.integers(min_value=1, max_value=12),
    use_async_source=st.booleans(),
)
def test_exactly_once_property(
    delays: list[int], fail_every: int, concurrency: int, use_async_source: bool
) -> None:
    async def call(item: AuthorizerLike, stats: CallStats) -> int:
        i = int(str(item))
        stats.attempts = 1
        for _ in range(delays[i]):
            await asyncio.sleep(0)
        if i % fail_every == 0:
            raise TransportError("down")
        return i

    async def agen() -> AsyncIterator[str]:
        for i in range(len(delays)):
            await asyncio.sleep(0)
            yield str(i)

    async def main() -> list[BulkResult[int]]:
        items = agen() if use_async_source else (str(i) for i in range(len(delays)))
        return await collect(run_bulk(items, call, concurrency=concurrency))

    results = asyncio.run(main())
    assert sorted(int(r.app_id) for r in results) == list(range(len(delays)))
    for r in results:
        assert r.ok == (int(r.app_id) % fail_every != 0)


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True, None])
def test_concurrency_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="concurrency"):
        run_bulk(["a"], echo, concurrency=bad)


@pytest.mark.parametrize("bad", ["app123", b"app123", bytearray(b"x")])
def test_a_single_string_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="not a single"):
        run_bulk(bad, echo)
    with pytest.raises(ValueError, match="not a single"):
        run_bulk(bad, echo)


def test_a_non_iterable_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="iterable"):
        run_bulk(42, echo)  # type: ignore[arg-type]


# -- laziness and bounded resources -------------------------------------------------------------


async def test_nothing_starts_before_iteration() -> None:
    source = Counting(10)
    calls: list[AuthorizerLike] = []

    async def call(item: AuthorizerLike, stats: CallStats) -> None:
        calls.append(item)

    run = run_bulk(iter(source), call, concurrency=5)
    await settle()
    assert source.pulled == 0
    assert calls == []
    assert other_tasks() == set()
    assert run.progress.submitted == 0
    assert len(await collect(run)) == 10


async def test_concurrency_is_respected() -> None:
    tracker = Tracker()
    run = run_bulk((f"a{i}" for i in range(40)), tracker, concurrency=7)
    consumer = asyncio.create_task(collect(run))
    await settle()
    assert tracker.running == 7
    assert run.progress.in_flight == 7
    tracker.gate.set()
    assert len(await consumer) == 40
    assert tracker.peak == 7


async def test_consumer_that_stops_early_pulls_only_about_concurrency_more() -> None:
    concurrency = 10
    source = Counting(1_000_000)
    run = run_bulk(iter(source), echo, concurrency=concurrency)
    seen = 0
    async for _ in run:
        seen += 1
        if seen == 100:
            break
    await settle()  # let the workers run as far as backpressure allows
    assert source.pulled <= seen + 2 * concurrency
    await run.aclose()


async def test_slow_consumer_backpressure_bounds_buffered_results() -> None:
    concurrency = 8
    source = Counting(10_000)
    run = run_bulk(iter(source), echo, concurrency=concurrency)
    async for _ in run:
        await settle(5)  # the consumer is much slower than the calls
        assert source.pulled - run.progress.done < 2 * concurrency
        if run.progress.done == 300:
            break
    await run.aclose()


async def test_large_generator_uses_a_fixed_pool_of_tasks() -> None:
    loop = asyncio.get_running_loop()
    created = 0

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kw)

    n, concurrency = 100_000, 50
    peak_tasks = 0

    async def call(item: AuthorizerLike, stats: CallStats) -> None:
        nonlocal peak_tasks
        if stats.attempts == 0 and str(item).endswith("000"):
            peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0)

    loop.set_task_factory(factory)
    try:
        run = run_bulk((f"{i}" for i in range(n)), call, concurrency=concurrency)
        done = 0
        async for _ in run:
            done += 1
    finally:
        loop.set_task_factory(None)
    assert done == n
    assert created == concurrency
    assert peak_tasks <= concurrency + 1


async def test_small_sized_batches_start_only_as_many_workers_as_items() -> None:
    loop = asyncio.get_running_loop()
    created = 0

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kw)

    loop.set_task_factory(factory)
    try:
        results = await collect(run_bulk(["a", "b", "c"], echo, concurrency=100))
    finally:
        loop.set_task_factory(None)
    assert sorted(str(r.value) for r in results) == ["a", "b", "c"]
    assert created == 3


async def test_async_source_is_advanced_by_one_worker_at_a_time() -> None:
    pulled = 0

    async def source() -> AsyncIterator[AuthorizerLike]:
        nonlocal pulled
        for i in range(200):
            await asyncio.sleep(0)  # a suspension point: re-entering anext here would raise
            pulled += 1
            yield f"app{i}"

    results = await collect(run_bulk(source(), echo, concurrency=16))
    assert sorted(r.app_id for r in results) == sorted(f"app{i}" for i in range(200))
    assert pulled == 200


async def test_async_source_is_pulled_lazily() -> None:
    pulled = 0

    async def source() -> AsyncIterator[AuthorizerLike]:
        nonlocal pulled
        for i in range(100_000):
            pulled += 1
            yield f"app{i}"

    concurrency = 5
    run = run_bulk(source(), echo, concurrency=concurrency)
    async with run:
        async for _ in run:
            if run.progress.done == 50:
                break
        await settle()
        assert pulled <= 50 + 2 * concurrency + 1  # + 1: the generator counts before yielding


# -- errors that end the run --------------------------------------------------------------------


async def test_a_bug_in_the_call_stops_the_run_and_cancels_the_rest() -> None:
    tracker = Tracker()

    async def call(item: AuthorizerLike, stats: CallStats) -> str:
        if item == "bad":
            await asyncio.sleep(0)
            raise TypeError("bug")
        return await tracker(item, stats)

    items = ["a1", "a2", "a3", "bad", "a4", "a5"]
    with pytest.raises(TypeError, match="bug"):
        await collect(run_bulk(items, call, concurrency=4))
    assert other_tasks() == set()
    assert tracker.started
    assert sorted(tracker.cancelled) == sorted(tracker.started)


async def test_a_failing_source_stops_the_run() -> None:
    def source() -> Iterator[str]:
        yield "a"
        yield "b"
        raise LookupError("database went away")

    seen: list[str] = []

    async def consume() -> None:
        async for r in run_bulk(source(), echo, concurrency=2):
            seen.append(r.app_id)

    with pytest.raises(LookupError, match="database"):
        await consume()
    assert other_tasks() == set()
    assert len(seen) <= 2


async def test_a_failing_async_source_stops_the_run() -> None:
    async def source() -> AsyncIterator[str]:
        yield "a"
        raise LookupError("stream broke")

    with pytest.raises(LookupError, match="stream broke"):
        await collect(run_bulk(source(), echo, concurrency=3))


async def test_non_kuaishou_exception_subclasses_are_bugs_but_kuaishou_ones_are_not() -> None:
    async def call(item: AuthorizerLike, stats: CallStats) -> None:
        if item == "x":
            raise KuaishouError("expected failure")
        raise ValueError("unexpected")  # a ValueError that is not an InvalidInputError

    results = await collect(run_bulk(["x"], call))
    assert isinstance(results[0].error, KuaishouError)
    with pytest.raises(ValueError, match="unexpected"):
        await collect(run_bulk(["y"], call))


async def test_a_worker_cancelled_from_outside_ends_the_run_instead_of_hanging() -> None:
    tracker = Tracker()
    consumer = asyncio.create_task(collect(run_bulk(["a", "b"], tracker, concurrency=2)))
    await settle()
    workers = other_tasks() - {consumer}
    assert len(workers) == 2
    next(iter(workers)).cancel()
    with pytest.raises(RuntimeError, match="cancelled from outside"):
        await asyncio.wait_for(consumer, 5)


# -- leaving early ------------------------------------------------------------------------------


async def test_aclose_after_break_cancels_and_awaits_in_flight_calls() -> None:
    tracker = Tracker(free=frozenset({"a0"}))
    run = run_bulk([f"a{i}" for i in range(20)], tracker, concurrency=5)
    async for r in run:
        assert r.value == "a0"
        break
    assert tracker.running == 5
    await run.aclose()
    await run.aclose()  # idempotent
    assert other_tasks() == set()
    assert tracker.running == 0
    assert sorted(tracker.cancelled) == sorted(set(tracker.started) - {"a0"})
    assert run.progress.in_flight == 0
    assert run.summary().total == 1
    assert [r async for r in run] == []


async def test_aclose_from_another_task_ends_the_consumers_iteration() -> None:
    tracker = Tracker(free=frozenset({"a0"}))
    run = run_bulk([f"a{i}" for i in range(20)], tracker, concurrency=5)
    consumer = asyncio.create_task(collect(run))
    await settle()
    assert tracker.running == 5
    await run.aclose()
    assert other_tasks() <= {consumer}  # the workers are gone
    assert tracker.running == 0
    assert [r.value for r in await consumer] == ["a0"]
    await run.aclose()


async def test_async_with_exit_closes_the_run() -> None:
    tracker = Tracker(free=frozenset({"app0"}))
    async with run_bulk(iter(Counting(1_000)), tracker, concurrency=4) as run:
        async for r in run:
            assert r.value == "app0"
            break
        assert tracker.running == 4
    assert other_tasks() == set()
    assert tracker.running == 0
    assert set(tracker.cancelled) == set(tracker.started) - {"app0"}


async def test_cancelling_the_consumer_cancels_the_calls() -> None:
    tracker = Tracker()
    consumer = asyncio.create_task(collect(run_bulk((f"a{i}" for i in range(50)), tracker)))
    await settle()
    assert tracker.running == 50
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert other_tasks() == set()
    assert len(tracker.cancelled) == 50


async def test_timeout_around_the_consumer_cleans_up() -> None:
    tracker = Tracker()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(collect(run_bulk(["a", "b"], tracker)), 0.01)
    assert other_tasks() == set()
    assert sorted(tracker.cancelled) == ["a", "b"]


async def test_plain_break_without_aclose_cleans_up_once_the_run_is_dropped() -> None:
    tracker = Tracker(free=frozenset({"app0"}))
    source = Counting(1_000_000)
    async for _ in run_bulk(iter(source), tracker, concurrency=8):
        break
    assert tracker.running == 8
    await settle()  # no gc.collect(): the run must not sit in a reference cycle
    assert other_tasks() == set()
    assert tracker.running == 0
    assert len(tracker.cancelled) == 8
    assert source.pulled <= 1 + 2 * 8


async def test_a_run_never_iterated_leaves_nothing_behind() -> None:
    run_bulk(["a", "b"], echo)
    gc.collect()
    await settle()
    assert other_tasks() == set()


# -- progress -----------------------------------------------------------------------------------


async def test_progress_and_on_result_follow_the_results() -> None:
    seen: list[BulkResult[int]] = []
    snapshots: list[tuple[int, int, int, int]] = []

    async def call(item: AuthorizerLike, stats: CallStats) -> int:
        await asyncio.sleep(0)
        if str(item).endswith("3"):
            raise TransportError("down")
        return 1

    def on_result(result: BulkResult[int]) -> None:
        seen.append(result)
        p = run.progress
        snapshots.append((p.done, p.ok, p.failed, p.submitted))

    run = run_bulk((str(i) for i in range(30)), call, concurrency=4, on_result=on_result)
    results = await collect(run)

    assert seen == results
    for n, (done, ok, failed, submitted) in enumerate(snapshots, start=1):
        assert done == n == ok + failed
        assert submitted >= done
    p = run.progress
    assert (p.submitted, p.done, p.ok, p.failed, p.in_flight) == (30, 30, 27, 3, 0)
    assert p.errors_by_class == Counter({"TransportError": 3})
    assert p.finished_at is not None
    elapsed = p.elapsed
    await asyncio.sleep(0.01)
    assert p.elapsed == elapsed  # frozen once finished

    summary = run.summary()
    assert summary == run.summary()
    assert isinstance(summary, BulkSummary)
    assert summary.elapsed == elapsed
    assert summary.rate == pytest.approx(30 / elapsed)
    assert p.rate == pytest.approx(summary.rate)
    text = str(summary)
    assert "30 done" in text
    assert "27 ok" in text
    assert "3 failed" in text
    assert "TransportError: 3" in text


async def test_progress_is_live_while_running() -> None:
    tracker = Tracker()
    run = run_bulk((f"a{i}" for i in range(10)), tracker, concurrency=3)
    consumer = asyncio.create_task(collect(run))
    await settle()
    p = run.progress
    assert (p.submitted, p.in_flight, p.done) == (3, 3, 0)
    assert p.finished_at is None
    assert p.elapsed > 0
    assert run.summary().total == 0
    tracker.gate.set()
    await consumer
    assert (p.submitted, p.in_flight, p.done) == (10, 0, 10)


async def test_an_exception_in_on_result_ends_the_run() -> None:
    def on_result(result: BulkResult[str]) -> None:
        raise ZeroDivisionError("metrics bug")

    tracker = Tracker(free=frozenset({"a0"}))
    with pytest.raises(ZeroDivisionError, match="metrics bug"):
        await collect(run_bulk(["a0", "a1", "a2"], tracker, on_result=on_result))
    assert other_tasks() == set()
    assert sorted(tracker.cancelled) == ["a1", "a2"]


async def test_on_progress_is_told_at_the_start_after_each_result_and_at_the_end() -> None:
    seen: list[tuple[int, int, bool]] = []

    def on_progress(progress: BulkProgress) -> None:
        seen.append((progress.done, progress.failed, progress.finished_at is not None))

    async def call(item: AuthorizerLike, stats: CallStats) -> str:
        if item == "bad":
            raise TransportError("lost")
        return str(item)

    results = await collect(run_bulk(["a", "bad", "c"], call, on_progress=on_progress))
    assert len(results) == 3
    assert seen[0] == (0, 0, False)
    assert [done for done, _, _ in seen[1:-1]] == [1, 2, 3]
    assert seen[-1] == (3, 1, True)
    assert len(seen) == 5


@pytest.mark.parametrize("when", ["start", "result"])
async def test_an_exception_in_on_progress_ends_the_run(when: str) -> None:
    def on_progress(progress: BulkProgress) -> None:
        if (when == "start") == (progress.done == 0) and progress.finished_at is None:
            raise ZeroDivisionError("progress bug")

    tracker = Tracker(free=frozenset({"a0"}))
    with pytest.raises(ZeroDivisionError, match="progress bug"):
        await collect(run_bulk(["a0", "a1", "a2"], tracker, on_progress=on_progress))
    assert other_tasks() == set()  # the workers were cancelled and awaited either way
