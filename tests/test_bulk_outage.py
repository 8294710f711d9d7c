"""Bulk runs against the platform's capacity: a component-wide limit loses nobody, outages are
waited out or failed fast, and every authorizer is accounted for once.

Behaviour through the public API against the fake; no timing assertions.
"""

from __future__ import annotations

import collections
import contextlib
from typing import TYPE_CHECKING

import pytest
from capacity_support import CircuitLog, authorizers

from kuaishou_mp import (
    CircuitChange,
    Client,
    InvalidInputError,
    PlatformUnavailableError,
    RetryPolicy,
    TransportError,
)
from kuaishou_mp.testing import Fault

if TYPE_CHECKING:
    from conftest import MakeClient, MakeFake


async def test_bulk_under_a_component_limit_loses_nobody(
    make_fake: MakeFake, make_client: MakeClient
) -> None:
    fake = await make_fake(record_requests=False, component_qps=50)
    apps = authorizers(fake, 300)
    async with make_client(fake) as client, client.bulk_app_info(apps, concurrency=100) as run:
        results = [r async for r in run]
    assert len(results) == 300
    assert all(r.ok for r in results), collections.Counter(
        type(r.error).__name__ for r in results if not r.ok
    )
    assert {r.app_id for r in results} == {a.app_id for a in apps}
    assert fake.counters["result:400002"] > 0  # the limit was really hit


async def test_bulk_on_outage_fail_and_wait(make_fake: MakeFake, make_client: MakeClient) -> None:
    fake = await make_fake(record_requests=False)
    apps = authorizers(fake, 60)
    fake.outage = Fault.http(503)
    client = make_client(fake, retry=RetryPolicy.none())
    async with client, client.bulk_app_info(apps, concurrency=10, on_outage="fail") as run:
        failed = [r async for r in run]
    kinds = collections.Counter(type(r.error).__name__ for r in failed)
    assert kinds["PlatformUnavailableError"] > 0
    assert len(failed) == 60

    fake.outage = Fault.http(503)

    def back_once_open(event: CircuitChange) -> None:
        if event.state == "open":
            fake.outage = None  # the platform comes back once the circuit opened

    log = CircuitLog(back_once_open)
    client = make_client(fake, hooks=[log])
    # The first failures' retries meet the open circuit and wait for the platform.
    async with client, client.bulk_app_info(apps, concurrency=30, on_outage="wait") as run:
        waited = [r async for r in run]
    assert len(waited) == 60
    assert collections.Counter(r.app_id for r in waited) == {a.app_id: 1 for a in apps}
    assert all(r.ok for r in waited), collections.Counter(
        type(r.error).__name__ for r in waited if not r.ok
    )
    assert log.changes[0] == ("closed", "open")
    assert log.changes[-1][1] == "closed"


async def test_max_outage_ends_the_run_with_platform_unavailable(
    make_fake: MakeFake, make_client: MakeClient
) -> None:
    fake = await make_fake(record_requests=False)
    apps = authorizers(fake, 80)
    fake.outage = Fault.http(503)
    client = make_client(fake, retry=RetryPolicy.none())
    async with client, client.bulk_app_info(apps, concurrency=10, max_outage=0) as run:
        results = [r async for r in run]
    assert collections.Counter(r.app_id for r in results) == {a.app_id: 1 for a in apps}
    kinds = collections.Counter(type(r.error).__name__ for r in results)
    assert kinds["PlatformUnavailableError"] > 40, kinds
    assert fake.counters["http:503"] < 80


async def test_bulk_outage_options_are_checked(kuaishou_client: Client) -> None:
    with pytest.raises(InvalidInputError):
        kuaishou_client.bulk_app_info([], on_outage="later")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        kuaishou_client.bulk_app_info([], max_outage=-1)


async def test_a_waiting_item_keeps_its_retries_across_the_outage(
    make_fake: MakeFake, make_client: MakeClient
) -> None:
    """The wait is where the circuit refuses an attempt: the item goes on with the same call,
    so no authorizer is sent more than the policy's attempts (a re-run would start over)."""
    fake = await make_fake()
    apps = authorizers(fake, 60)
    fake.outage = Fault.http(503)

    def back_once_open(event: CircuitChange) -> None:
        if event.state == "open":
            fake.outage = None

    policy = RetryPolicy(max_attempts=2, backoff_base=0.05, backoff_max=0.05, budget=None)
    client = make_client(fake, retry=policy, hooks=[CircuitLog(back_once_open)])
    async with client, client.bulk_app_info(apps, concurrency=60, on_outage="wait") as run:
        results = [r async for r in run]
    assert collections.Counter(r.app_id for r in results) == {a.app_id: 1 for a in apps}
    sends = collections.Counter(r.app_id for r in fake.requests)
    assert max(sends.values()) <= 2, sends.most_common(3)
    waited = [r for r in results if r.ok and sends[r.app_id] == 2]
    assert waited  # some items failed once, waited out the outage, and then succeeded


async def test_a_call_outside_a_waiting_run_fails_fast(
    make_fake: MakeFake, make_client: MakeClient
) -> None:
    """Only items of a bulk run with on_outage="wait" wait; a plain call fails fast."""
    fake = await make_fake(record_requests=False)
    apps = authorizers(fake, 40)
    fake.outage = Fault.http(503)
    async with make_client(fake, retry=RetryPolicy.none()) as client:
        for a in apps:
            with contextlib.suppress(TransportError, PlatformUnavailableError):
                await client.app_info(a)
        assert client._pipeline.capacity.circuit.state != "closed"
        with pytest.raises(PlatformUnavailableError):
            await client.app_info(apps[0])
