"""Issue 16, wired: throttles re-queued, retry budget, outage circuit, logs (bulk runs under
limits and outages are in ``test_bulk_outage.py``).

Behaviour through the public API against the fake; no timing assertions.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from capacity_support import CircuitLog, authorizers

from kuaishou_mp import (
    PlatformUnavailableError,
    RateLimit,
    RetryBudget,
    RetryPolicy,
    TransportError,
)
from kuaishou_mp.testing import FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import MakeClient


async def test_throttle_does_not_spend_retry_attempts(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    (a,) = authorizers(kuaishou_fake, 1)
    # More throttles than the policy has attempts: only re-queues can get through them all.
    kuaishou_fake.inject(a.app_id, *[Fault.result(400002)] * 6)
    async with make_client(
        kuaishou_fake,
        retry=RetryPolicy(max_attempts=2, backoff_base=0.001, backoff_max=0.005),
        rate_limit=RateLimit(per_authorizer_qps=1000),
    ) as client:
        assert (await client.app_info(a)).app_name
    assert kuaishou_fake.counters["result:400002"] == 6
    assert kuaishou_fake.counters["endpoint:app_info"] == 7


async def test_retry_budget_stops_a_retry_storm(make_client: MakeClient) -> None:
    async with FakeKuaishou(record_requests=False) as fake:
        apps = authorizers(fake, 200)
        fake.outage = Fault.http(503)
        budget = RetryBudget(ratio=0.1, min_per_second=1.0)
        policy = RetryPolicy(backoff_base=0.001, backoff_max=0.005, budget=budget)
        client = make_client(fake, retry=policy)
        async with client, client.bulk_app_info(apps, concurrency=20, on_outage="fail") as run:
            results = [r async for r in run]
        sent = fake.counters["http:503"]
        # Without the budget: 4 x 200 = 800. With it: first attempts plus a bounded share.
        assert sent < 200 * 1.5, sent
        assert len(results) == 200
        assert not any(r.ok for r in results)


async def test_no_budget_retries_every_failure(make_client: MakeClient) -> None:
    async with FakeKuaishou(record_requests=False) as fake:
        apps = authorizers(fake, 3)
        fake.outage = Fault.http(503)
        policy = RetryPolicy(backoff_base=0.001, backoff_max=0.005, budget=None)
        async with make_client(fake, retry=policy) as client:
            for a in apps:
                with pytest.raises(TransportError):
                    await client.app_info(a)
        assert fake.counters["http:503"] == 12


async def test_circuit_opens_fails_fast_probes_and_closes(make_client: MakeClient) -> None:
    async with FakeKuaishou(record_requests=False) as fake:
        apps = authorizers(fake, 40)
        fake.outage = Fault.http(503)
        log = CircuitLog()
        changes = log.changes
        async with make_client(fake, retry=RetryPolicy.none(), hooks=[log]) as client:
            capacity = client._pipeline.capacity
            outcomes = []
            for a in apps:
                try:
                    await client.app_info(a)
                except (TransportError, PlatformUnavailableError) as exc:
                    outcomes.append(type(exc).__name__)
            assert "PlatformUnavailableError" in outcomes
            sent = fake.counters["http:503"]
            assert sent < len(apps)  # the refused ones were never sent
            assert changes[0] == ("closed", "open")
            fake.outage = None
            # Let the next probe go now, as if its interval had passed.
            circuit = capacity.circuit
            while circuit.state != "closed":
                try:
                    await client.app_info(apps[0])
                except PlatformUnavailableError:
                    circuit._next_probe = 0.0  # the interval passing, without waiting
            assert changes[-1] == ("half_open", "closed")
            assert (await client.app_info(apps[1])).app_name


async def test_one_meter_per_client_shared_by_copies(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    async with make_client(kuaishou_fake) as one, make_client(kuaishou_fake) as two:
        copy = one.with_options(timeout=3)
        assert copy._pipeline.capacity is one._pipeline.capacity
        assert two._pipeline.capacity is not one._pipeline.capacity


async def test_no_warning_per_call_during_retries_and_an_outage(
    caplog: pytest.LogCaptureFixture,
    make_client: MakeClient,
) -> None:
    async with FakeKuaishou(record_requests=False) as fake:
        apps = authorizers(fake, 100)
        for a in apps[:10]:
            fake.inject(a.app_id, Fault.http(503), Fault.result(400002))
        with caplog.at_level(logging.DEBUG, logger="kuaishou_mp"):
            async with make_client(fake) as client:
                async with client.bulk_app_info(apps[:10], concurrency=10) as run:
                    assert all([r.ok async for r in run])
                retries = [r for r in caplog.records if r.getMessage().startswith("retrying")]
                assert retries
                assert all(r.levelno == logging.INFO for r in retries)
                assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
                fake.outage = Fault.http(503)
                async with client.bulk_app_info(apps, concurrency=20, max_outage=0) as run:
                    assert len([r async for r in run]) == 100
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        # One outage episode: one warning for it (and at most one for the spent budget).
        assert sum("outage circuit open" in w for w in warnings) == 1, warnings
        assert len(warnings) <= 2, warnings
