"""The capacity signals as hooks and OpenTelemetry see them, through real calls to the fake:
the learned component-wide rate, and the outage circuit's changes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from kuaishou_mp import (
    AttemptStart,
    Authorizer,
    CircuitChange,
    Client,
    Hooks,
    PlatformUnavailableError,
    RetryPolicy,
    ThrottleEvent,
    TransportError,
)
from kuaishou_mp.otel import OpenTelemetryHooks
from kuaishou_mp.testing import FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import MakeClient

FAST = RetryPolicy(backoff_base=0.001, backoff_max=0.01)


class Recorder(Hooks):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def _keep(self, event: Any) -> None:
        self.events.append(event)

    on_attempt_start = on_throttle = on_circuit_change = _keep

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


class Meters:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.hooks = OpenTelemetryHooks(meter_provider=self.provider)

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def circuit(self) -> dict[str, int]:
        return {
            str(p.attributes["kuaishou.circuit.state"]): p.value
            for p in self.points("kuaishou_mp.circuit.state")
        }


@pytest.fixture
def meters() -> Iterator[Meters]:
    m = Meters()
    yield m
    m.provider.shutdown()


def authorizers(fake: FakeKuaishou, n: int) -> list[Authorizer]:
    return [Authorizer(a.app_id, a.access_token) for a in fake.add_authorizers(n)]


async def open_the_circuit(client: Client, apps: list[Authorizer]) -> None:
    for a in apps:
        with contextlib.suppress(TransportError, PlatformUnavailableError):
            await client.app_info(a)


async def test_the_learned_rate_reaches_the_hooks_and_the_gauge(
    meters: Meters, make_client: MakeClient
) -> None:
    async with FakeKuaishou(record_requests=False, component_qps=50) as fake:
        apps = authorizers(fake, 300)
        recorder = Recorder()
        client = make_client(fake, hooks=[recorder, meters.hooks], retry=FAST)
        async with client, client.bulk_app_info(apps, concurrency=100) as run:
            results = [r async for r in run]
    assert all(r.ok for r in results)
    throttles = recorder.of(ThrottleEvent)
    assert len(throttles) == fake.counters["result:400002"] > 0
    learned = [t.learned_rate for t in throttles if t.learned_rate is not None]
    assert learned  # component-wide throttling was learned
    # Nothing is learned before the first throttle; afterwards attempts carry the rate.
    starts = recorder.of(AttemptStart)
    assert starts[0].learned_rate is None
    assert any(s.learned_rate is not None for s in starts)
    (gauge,) = meters.points("kuaishou_mp.ratelimit.learned_rate")
    assert gauge.value > 0


async def test_circuit_changes_reach_the_hooks_and_the_gauge(
    meters: Meters, make_client: MakeClient
) -> None:
    async with FakeKuaishou(record_requests=False) as fake:
        apps = authorizers(fake, 40)
        fake.outage = Fault.http(503)
        recorder = Recorder()
        async with make_client(
            fake, hooks=[recorder, meters.hooks], retry=RetryPolicy.none()
        ) as client:
            await open_the_circuit(client, apps)
            changes = recorder.of(CircuitChange)
            assert [(c.previous, c.state) for c in changes] == [("closed", "open")]
            assert meters.circuit() == {"closed": 0, "open": 1, "half_open": 0}


async def test_a_copy_with_its_own_hooks_hears_the_shared_circuit(make_client: MakeClient) -> None:
    async with FakeKuaishou(record_requests=False) as fake:
        apps = authorizers(fake, 40)
        fake.outage = Fault.http(503)
        base, own = Recorder(), Recorder()
        async with make_client(fake, hooks=[base], retry=RetryPolicy.none()) as client:
            copy = client.with_options(hooks=[own])
            await open_the_circuit(copy, apps)
            assert [c.state for c in own.of(CircuitChange)] == ["open"]
            assert [c.state for c in base.of(CircuitChange)] == ["open"]
            assert not base.of(AttemptStart)  # the copy's attempts are the copy's hooks'
