"""Cancellation at random points of a call and of a bulk run.

A call may be cancelled anywhere: waiting for the limiter, for a token refresh, for a
connection, for the answer, while reading the body, while backing off before a retry. After
each cancellation the CancelledError reaches the caller (never retried, never swallowed), the
connection pool gets back every connection it handed out, and the client keeps working. No
"Task was destroyed but it is pending", "Unclosed ..." or other report reaches the loop's
exception handler (and ``filterwarnings = error`` turns any ResourceWarning into a failure).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest
from hardening_support import (
    connector_of,
    in_use,
    no_other_tasks,
    open_sockets,
    other_tasks,
    poll_until,
    recording_loop_errors,
    server_connections,
    settle,
)

from kuaishou_mp import (
    AppInfo,
    Authorizer,
    BulkRun,
    Client,
    ClientClosedError,
    InMemoryTokenProvider,
    KuaishouError,
    RateLimit,
    RetryPolicy,
    TransportError,
)
from kuaishou_mp.testing import FakeAuthorizer, FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import ClientOptions, MakeClient
    from typing_extensions import Unpack

FAULTS: list[Fault | None] = [
    None,
    None,
    Fault.http(503),  # cancelled in the backoff before the retry
    Fault.result(100200500),
    Fault.hang(5),  # cancelled while waiting for the answer
    Fault.delay(0.02),
    Fault.endless(),  # cancelled while reading the body
    Fault.huge(4 * 1024 * 1024),
    Fault.drop(),
]

CALLS: list[Callable[[Client, Authorizer], Awaitable[Any]]] = [
    lambda client, a: client.app_info(a),
    lambda client, a: client.server_domain(a, "get"),
    lambda client, a: client.webview_domain(a, "add", webview=["cancel.example.com"]),
]


def client_options(**overrides: Unpack[ClientOptions]) -> ClientOptions:
    """This file's options for ``make_client``, which ``overrides`` replace."""
    defaults: ClientOptions = {
        "timeout": 3.0,
        "retry": RetryPolicy(backoff_base=0.02, backoff_max=0.05),
        "rate_limit": RateLimit(per_authorizer_qps=100),
    }
    options: ClientOptions = {**defaults, **overrides}
    return options


def bulk_workers() -> list[asyncio.Task[Any]]:
    # Not every task runs a coroutine with a __qualname__ (an asyncgen finalizer runs athrow).
    return [t for t in other_tasks() if "_Engine.work" in getattr(t.get_coro(), "__qualname__", "")]


async def outcome_of(task: asyncio.Task[Any]) -> str:
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"
    except KuaishouError:
        return "failed"
    return "completed"


async def all_usable(client: Client, apps: list[FakeAuthorizer]) -> None:
    """Every authorizer can be called again, promptly (nothing stuck in the limiter)."""
    calls = asyncio.gather(*(client.app_info(Authorizer(a.app_id, a.access_token)) for a in apps))
    infos = await asyncio.wait_for(calls, 5)
    assert all(type(i) is AppInfo for i in infos)


async def test_cancel_one_call_at_random_moments(make_client: MakeClient) -> None:
    rng = random.Random(20260808)
    outcomes: collections.Counter[str] = collections.Counter()
    with recording_loop_errors() as loop_errors:
        async with FakeKuaishou(latency=0.01) as fake:
            apps = fake.add_authorizers(8)
            async with make_client(fake, **client_options()) as client:
                connector = connector_of(client)
                for _ in range(60):
                    app = rng.choice(apps)
                    fault = rng.choice(FAULTS)
                    if fault is not None:
                        fake.inject(app.app_id, fault, fault)
                    a = Authorizer(app.app_id, app.access_token)
                    task = asyncio.ensure_future(rng.choice(CALLS)(client, a))
                    await asyncio.sleep(rng.uniform(0, 0.08))
                    delivered = task.cancel()
                    outcome = await outcome_of(task)
                    # A cancellation delivered to a running call is never swallowed (turned
                    # into a timeout, retried, or returned through).
                    assert outcome == "cancelled" or not delivered, outcome
                    outcomes[outcome] += 1
                    fake.clear_faults(app.app_id)
                    assert await settle(connector) == 0
                await all_usable(client, apps)
                assert in_use(connector) == 0
        assert await no_other_tasks() == set()
    assert loop_errors.messages == []
    assert outcomes["cancelled"] >= 30, outcomes


async def test_cancel_after_each_number_of_loop_steps(make_client: MakeClient) -> None:
    """Deterministic "random points": cancel after k trips through the event loop, for every k
    until the call completes on its own, so each await of the pipeline gets its turn."""
    with recording_loop_errors() as loop_errors:
        async with FakeKuaishou() as fake:
            (app,) = fake.add_authorizers(1)
            a = Authorizer(app.app_id, app.access_token)
            async with make_client(fake, **client_options()) as client:
                connector = connector_of(client)
                cancelled_at: list[int] = []
                for steps in range(200):
                    fake.inject(app.app_id, Fault.http(502))  # a retry in every call
                    task = asyncio.ensure_future(client.app_info(a))
                    for _ in range(steps):
                        await asyncio.sleep(0)
                    delivered = task.cancel()
                    outcome = await outcome_of(task)
                    fake.clear_faults(app.app_id)
                    assert await settle(connector) == 0
                    if not delivered:  # it had finished on its own
                        assert outcome == "completed"
                        break
                    assert outcome == "cancelled", f"swallowed after {steps} steps"
                    cancelled_at.append(steps)
                # Every step count short of completion saw the call cancelled.
                assert cancelled_at == list(range(len(cancelled_at)))
                assert len(cancelled_at) > 10
                await all_usable(client, [app])
        assert await no_other_tasks() == set()
    assert loop_errors.messages == []


async def test_cancel_calls_queued_in_the_limiter(make_client: MakeClient) -> None:
    """Many calls per authorizer wait in the limiter's FIFO; cancelling any of them, at any
    time, must not wedge the queue for the others."""
    rng = random.Random(7)
    with recording_loop_errors() as loop_errors:
        async with FakeKuaishou() as fake:
            apps = fake.add_authorizers(5)
            limit = RateLimit(per_authorizer_qps=40, global_qps=150)
            async with make_client(fake, **client_options(rate_limit=limit)) as client:
                connector = connector_of(client)
                tasks = [
                    asyncio.ensure_future(client.app_info(Authorizer(app.app_id, app.access_token)))
                    for app in apps
                    for _ in range(20)
                ]
                doomed = rng.sample(tasks, 50)
                delivered = set()
                for task in doomed:
                    await asyncio.sleep(rng.uniform(0, 0.01))
                    if task.cancel():
                        delivered.add(task)
                outcomes = collections.Counter([await outcome_of(t) for t in tasks])
                assert all(t.cancelled() for t in delivered)
                assert outcomes["failed"] == 0
                assert outcomes["completed"] >= 50  # every call not cancelled went through
                assert outcomes["cancelled"] >= 25
                assert await settle(connector) == 0
                await all_usable(client, apps)
        assert await no_other_tasks() == set()
    assert loop_errors.messages == []


async def test_cancel_during_a_token_refresh(make_client: MakeClient) -> None:
    with recording_loop_errors() as loop_errors:
        async with FakeKuaishou() as fake:
            apps = fake.add_authorizers(3)
            tokens = {a.app_id: a.access_token for a in apps}
            refreshes: collections.Counter[str] = collections.Counter()

            async def refresh(app_id: str) -> str:
                refreshes[app_id] += 1
                await asyncio.sleep(0.05)
                return tokens[app_id]

            provider = InMemoryTokenProvider(refresh=refresh)
            async with make_client(fake, **client_options(token_provider=provider)) as client:
                connector = connector_of(client)
                for delay in (0.0, 0.01, 0.03, 0.049):
                    waiting = [asyncio.ensure_future(client.app_info(a.app_id)) for a in apps]
                    await asyncio.sleep(delay)
                    for task in waiting:
                        task.cancel()
                    assert {await outcome_of(t) for t in waiting} == {"cancelled"}
                    assert provider._locks == {}
                infos = await asyncio.gather(*(client.app_info(a.app_id) for a in apps))
                assert len(infos) == 3
                assert await settle(connector) == 0
        assert await no_other_tasks() == set()
    assert loop_errors.messages == []


async def consume(run: BulkRun[Any], seen: list[Any]) -> None:
    async with run:
        async for result in run:
            seen.append(result)


Stop = Callable[[asyncio.Task[None], BulkRun[Any]], Awaitable[None]]


async def cancel_consumer(consumer: asyncio.Task[None], run: BulkRun[Any]) -> None:
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer


async def close_from_outside(consumer: asyncio.Task[None], run: BulkRun[Any]) -> None:
    await run.aclose()
    await consumer  # its iteration simply ends


@pytest.mark.parametrize("stop", [cancel_consumer, close_from_outside])
async def test_stop_a_bulk_run_at_random_moments(stop: Stop, make_client: MakeClient) -> None:
    rng = random.Random(stop.__name__)
    with recording_loop_errors() as loop_errors:
        async with FakeKuaishou(latency=0.005) as fake:
            apps = fake.add_authorizers(400)
            for app in rng.sample(apps, 60):
                fake.inject(app.app_id, rng.choice([f for f in FAULTS if f is not None]))
            authorizers = [Authorizer(a.app_id, a.access_token) for a in apps]
            async with make_client(fake, **client_options()) as client:
                connector = connector_of(client)
                for _ in range(6):
                    seen: list[Any] = []
                    run = client.bulk_app_info(authorizers, concurrency=rng.choice([1, 7, 50]))
                    consumer = asyncio.ensure_future(consume(run, seen))
                    await asyncio.sleep(rng.uniform(0.0, 0.15))
                    await stop(consumer, run)
                    assert bulk_workers() == []
                    assert run.progress.in_flight == 0
                    assert run.progress.finished_at is not None
                    assert len({r.app_id for r in seen}) == len(seen)
                    assert await settle(connector) == 0
                # Still usable: a full run afterwards reports every authorizer once, all ok.
                for app in apps:
                    fake.clear_faults(app.app_id)
                async with client.bulk_app_info(authorizers, concurrency=100) as run:
                    results = [r async for r in run]
                assert sorted(r.app_id for r in results) == sorted(a.app_id for a in apps)
                assert all(r.ok for r in results)
                assert await settle(connector) == 0
        assert await no_other_tasks() == set()
    assert loop_errors.messages == []


async def test_a_bulk_run_dropped_after_break_is_finalized(make_client: MakeClient) -> None:
    """``break`` without ``async with`` or ``aclose``: the loop's async-generator finalizer
    closes the run once it is garbage; its workers and connections go with it."""
    with recording_loop_errors() as loop_errors:
        async with FakeKuaishou(latency=0.01) as fake:
            apps = fake.add_authorizers(200)
            authorizers = [Authorizer(a.app_id, a.access_token) for a in apps]
            async with make_client(fake, **client_options()) as client:
                connector = connector_of(client)
                run = client.bulk_app_info(authorizers, concurrency=20)
                async for _ in run:
                    break
                assert bulk_workers() != []
                del run
                gc.collect()
                assert await poll_until(lambda: not bulk_workers())
                assert await settle(connector) == 0
                await all_usable(client, apps[:10])
        assert await no_other_tasks() == set()
    assert loop_errors.messages == []


async def test_closing_the_client_under_load_leaves_nothing(make_client: MakeClient) -> None:
    """Close the client while calls are in flight, some of them about to retry: each ends
    with one of our errors (a ClientClosedError, not aiohttp's bare "Session is closed"
    RuntimeError), and the session, the connector and every socket are closed."""
    with recording_loop_errors() as loop_errors:
        async with FakeKuaishou(latency=0.05) as fake:
            apps = fake.add_authorizers(50)
            for app in apps[::2]:
                fake.inject(app.app_id, Fault.http(503))
            client = make_client(fake, **client_options())
            connector = connector_of(client)
            session = client.session
            tasks = [
                asyncio.ensure_future(client.app_info(Authorizer(a.app_id, a.access_token)))
                for a in apps
            ]
            await asyncio.sleep(0.03)
            await client.close()
            errors = await asyncio.gather(*tasks, return_exceptions=True)
            assert {type(e) for e in errors} <= {ClientClosedError, TransportError}
            assert any(type(e) is ClientClosedError for e in errors)
            assert session.closed
            assert connector.closed
            assert open_sockets(connector) == 0
            assert await server_connections(fake) == 0
        assert await no_other_tasks() == set()
    assert loop_errors.messages == []


async def test_closing_the_client_under_a_bulk_run_reports_every_item(
    make_client: MakeClient,
) -> None:
    with recording_loop_errors() as loop_errors:
        async with FakeKuaishou(latency=0.02) as fake:
            apps = fake.add_authorizers(300)
            for app in apps[::3]:
                fake.inject(app.app_id, Fault.http(503))
            client = make_client(fake, **client_options())
            authorizers = [Authorizer(a.app_id, a.access_token) for a in apps]
            results = []
            async with client.bulk_app_info(authorizers, concurrency=30) as run:
                async for result in run:
                    results.append(result)
                    if len(results) == 40:
                        await client.close()
            assert sorted(r.app_id for r in results) == sorted(a.app_id for a in apps)
            errors = collections.Counter(type(r.error).__name__ for r in results if not r.ok)
            assert set(errors) <= {"ClientClosedError", "TransportError"}
            assert errors["ClientClosedError"] >= 200
            assert await server_connections(fake) == 0
        assert await no_other_tasks() == set()
    assert loop_errors.messages == []
