"""The shared attempt timer: exact expiry, cancellations that are not its own, bounded queue.

Unit tests drive :class:`AttemptTimer` directly; the last ones go through the client against the
fake, where it replaces aiohttp's per-request timeout.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import pytest

from kuaishou_mp import Authorizer, RequestTimeoutError, RetryPolicy, Timeout
from kuaishou_mp._attempt_timer import SUPPORTED, AttemptTimer, Watch, attempt_timer
from kuaishou_mp.testing import FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import MakeClient

pytestmark = pytest.mark.skipif(not SUPPORTED, reason="needs Task.uncancel (Python 3.11+)")


def cancel_requests() -> int:
    """How many cancellations of the current task are pending (``Task.cancelling()``)."""
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        return task.cancelling()
    raise AssertionError("skipped before Python 3.11")  # pragma: no cover


async def watched_sleep(timer: AttemptTimer, seconds: float, seen: list[Watch]) -> str:
    """An attempt as the transport makes one: a timeout if the watch expired, else re-raise."""
    watch = timer.watch()
    seen.append(watch)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        if not watch.expired():
            raise
        return "timed out"
    finally:
        watch.finish()
    return "finished"


def start_attempt(
    timeout: float, seconds: float
) -> tuple[AttemptTimer, list[Watch], asyncio.Task[str]]:
    """A task making one watched attempt of ``seconds`` under a fresh ``timeout`` timer."""
    timer = AttemptTimer(timeout)
    seen: list[Watch] = []
    return timer, seen, asyncio.create_task(watched_sleep(timer, seconds, seen))


async def test_an_attempt_past_its_timeout_is_interrupted_and_the_task_is_left_clean() -> None:
    timer = AttemptTimer(0.05)
    seen: list[Watch] = []
    assert await watched_sleep(timer, 10, seen) == "timed out"
    # The timer's cancellation was taken back: the task can go on as if nothing happened.
    assert cancel_requests() == 0
    await asyncio.sleep(0)
    assert await watched_sleep(timer, 0, seen) == "finished"


async def test_attempts_that_finish_in_time_are_not_touched() -> None:
    timer = AttemptTimer(5)
    seen: list[Watch] = []
    results = await asyncio.gather(*(watched_sleep(timer, 0.01, seen) for _ in range(50)))
    assert results == ["finished"] * 50
    assert not any(w.fired for w in seen)


async def test_each_attempt_expires_at_its_own_deadline() -> None:
    timer = AttemptTimer(0.2)
    seen: list[Watch] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    quick = asyncio.create_task(watched_sleep(timer, 0.01, seen))
    await asyncio.sleep(0.1)
    slow = asyncio.create_task(watched_sleep(timer, 10, seen))
    assert await quick == "finished"
    assert await slow == "timed out"
    # The second attempt started 0.1 s later and got its full 0.2 s, not the first one's rest.
    assert loop.time() - started >= 0.3


async def test_someone_elses_cancellation_is_never_taken_for_a_timeout() -> None:
    _, seen, task = start_attempt(5, 10)
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not seen[0].fired


async def test_a_cancellation_racing_the_timer_still_cancels() -> None:
    timer, seen, task = start_attempt(5, 10)
    await asyncio.sleep(0.01)
    # Both arrive before the task runs again: the outside one must win.
    task.cancel()
    seen[0].deadline = 0.0
    timer._fire()
    assert seen[0].fired
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_finished_attempts_leave_the_queue() -> None:
    timer = AttemptTimer(60)
    seen: list[Watch] = []
    for _ in range(1000):
        await watched_sleep(timer, 0, seen)
    assert len(timer) <= 1
    assert all(w.task is None for w in seen)  # a finished watch holds no task


async def test_close_stops_the_timer() -> None:
    timer, _, task = start_attempt(0.05, 0.2)
    await asyncio.sleep(0)
    timer.close()
    assert len(timer) == 0
    assert await task == "finished"


def test_no_timer_for_no_timeout() -> None:
    assert attempt_timer(None) is None
    timer = attempt_timer(1.5)
    assert timer is not None
    assert timer.timeout == 1.5


def hung_authorizer(fake: FakeKuaishou) -> Authorizer:
    """An authorizer whose next request hangs for 30 s."""
    a = fake.add_authorizer("ks_timer_app")
    fake.inject(a.app_id, Fault.hang(30))
    return Authorizer(a.app_id, a.access_token)


async def test_the_client_times_out_a_hung_request_and_retries(
    kuaishou_fake: FakeKuaishou,
    make_client: MakeClient,
) -> None:
    a = hung_authorizer(kuaishou_fake)
    async with make_client(
        kuaishou_fake, timeout=0.2, retry=RetryPolicy(backoff_base=0.01)
    ) as client:
        info = await client.app_info(a)
        assert info.app_name
        assert cancel_requests() == 0
    assert [r.outcome for r in kuaishou_fake.requests][-1] == "ok"
    assert len(kuaishou_fake.requests) == 2


async def test_the_timeout_error_says_how_long_it_waited(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    a = hung_authorizer(kuaishou_fake)
    async with make_client(kuaishou_fake, timeout=Timeout(total=0.15), retry=None) as client:
        with pytest.raises(RequestTimeoutError, match=r"timed out after 0\.15s") as caught:
            await client.app_info(a)
    assert a.access_token not in str(caught.value)
    assert caught.value.request_sent is None  # the platform may have acted


async def test_copies_with_other_timeouts_get_their_own_timer(
    kuaishou_fake: FakeKuaishou,
    make_client: MakeClient,
) -> None:
    a = hung_authorizer(kuaishou_fake)
    async with make_client(kuaishou_fake, timeout=30, retry=None) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RequestTimeoutError):
            await client.with_options(timeout=0.1).app_info(a)
        assert loop.time() - started < 10
        assert (await client.app_info(a)).app_name  # the long timeout is untouched
        timers = client._shared.timers.timers
        assert sorted(timers) == [0.1, 30]
    assert all(len(t) == 0 for t in timers.values())  # closed with the client


async def test_an_outside_cancellation_of_a_call_propagates(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    a = hung_authorizer(kuaishou_fake)
    async with make_client(kuaishou_fake, timeout=10) as client:
        call = asyncio.create_task(client.app_info(a))
        await asyncio.sleep(0.1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert (await client.app_info(a)).app_name  # and the client goes on


async def test_past_a_few_distinct_timeouts_copies_use_aiohttps_timer(
    kuaishou_fake: FakeKuaishou,
    make_client: MakeClient,
) -> None:
    a = hung_authorizer(kuaishou_fake)
    async with make_client(kuaishou_fake, retry=None) as client:
        copies = [client.with_options(timeout=0.1 + i / 100) for i in range(20)]
        assert len(client._shared.timers.timers) <= 8  # bounded, however many budgets are used
        late = copies[-1]
        assert late._pipeline.timeouts.timer is None
        with pytest.raises(RequestTimeoutError):
            await late.app_info(a)  # still timed out, by aiohttp's own timer
