"""Where a bulk run's outage wait applies: to the calls its workers make for items, never to
what an async source awaits while a worker pulls from it (that fails fast, like any call
outside the run's items)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kuaishou_mp import Authorizer
from kuaishou_mp._callstats import CallStats
from kuaishou_mp._circuit import OutageCircuit
from kuaishou_mp._outage_wait import _WAITING, pulled_without_waiting, waiting_out_outages
from kuaishou_mp.bulk import run_bulk


async def test_items_wait_and_the_source_does_not() -> None:
    circuit = OutageCircuit(window=2.0)
    seen_by_source: list[object] = []
    seen_by_call: list[object] = []

    async def source() -> AsyncIterator[Authorizer]:
        for i in range(8):
            seen_by_source.append(_WAITING.get())
            yield Authorizer(f"ks_{i}", "token")

    async def call(authorizer: Authorizer | str, stats: CallStats) -> str:
        stats.attempts += 1
        seen_by_call.append(_WAITING.get())
        return str(authorizer)

    waiting = waiting_out_outages(call, circuit, "wait", 30.0)
    items = pulled_without_waiting(source(), "wait")
    async with run_bulk(items, waiting, concurrency=2) as run:
        results = [r async for r in run]
    assert len(results) == 8
    assert all(r.ok for r in results)
    assert seen_by_call == [(circuit, 30.0)] * 8  # every item's call waits out outages
    assert seen_by_source == [None] * 8  # no pull does, though its worker set the wait


def test_plain_iterables_and_failing_runs_are_left_as_they_are() -> None:
    items = [Authorizer("ks_a", "token")]
    assert pulled_without_waiting(items, "wait") is items

    async def source() -> AsyncIterator[Authorizer]:
        yield items[0]

    asource = source()
    assert pulled_without_waiting(asource, "fail") is asource
