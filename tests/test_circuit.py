"""The outage circuit breaker, on a virtual clock."""

from __future__ import annotations

import itertools
import pickle

import pytest

import kuaishou_mp
from kuaishou_mp import KuaishouError, PlatformUnavailableError
from kuaishou_mp._circuit import CircuitState, OutageCircuit

Change = tuple[CircuitState, CircuitState, float]


def make(
    probe_interval: float = 2.0, max_probe_interval: float = 30.0
) -> tuple[OutageCircuit, list[Change]]:
    changes: list[Change] = []
    circuit = OutageCircuit(
        probe_interval=probe_interval,
        max_probe_interval=max_probe_interval,
        on_change=lambda old, new, now: changes.append((old, new, now)),
    )
    return circuit, changes


def state(circuit: OutageCircuit) -> CircuitState:
    # Read through a function so the type checker does not narrow the attribute between calls.
    return circuit.state


def fail_many(circuit: OutageCircuit, n: int, start: float, apps: int = 10) -> float:
    t = start
    for i in range(n):
        circuit.on_failure(f"app{i % apps}", t)
        t += 0.01
    return t


def test_most_calls_failing_across_many_authorizers_open_it() -> None:
    circuit, changes = make()
    t = fail_many(circuit, 19, 0.0)
    assert state(circuit) == "closed"
    assert circuit.allow(t)
    circuit.on_failure("app9", t)
    assert state(circuit) == "open"
    assert changes == [("closed", "open", t)]
    assert circuit.opened_at == t
    assert not circuit.allow(t + 0.1)
    assert circuit.retry_after(t + 0.5) == pytest.approx(1.5)


def test_one_broken_authorizer_does_not_open_it() -> None:
    circuit, _ = make()
    fail_many(circuit, 500, 0.0, apps=4)  # min_authorizers is 5
    assert state(circuit) == "closed"


def test_failures_that_are_not_most_calls_do_not_open_it() -> None:
    circuit, _ = make()
    t = 0.0
    for i in range(300):
        if i % 2:
            circuit.on_failure(f"app{i % 50}", t)
        else:
            circuit.on_success(t)
        t += 0.01
    assert state(circuit) == "closed"  # exactly half is not "most"


def test_failures_older_than_the_window_are_forgotten() -> None:
    circuit, _ = make()
    fail_many(circuit, 15, 0.0)
    fail_many(circuit, 15, 20.0)
    assert state(circuit) == "closed"


def test_one_probe_per_interval_with_capped_doubling() -> None:
    circuit, _changes = make(probe_interval=2.0, max_probe_interval=8.0)
    t = fail_many(circuit, 20, 0.0)
    opened = t - 0.01
    assert not circuit.allow(opened + 1.99)
    probe_times = []
    now = opened
    for _ in range(5):
        now += circuit.retry_after(now)
        assert circuit.allow(now)
        assert state(circuit) == "half_open"
        assert not circuit.allow(now)  # only one probe at a time
        circuit.on_failure("app0", now + 0.1)
        assert state(circuit) == "open"
        probe_times.append(now)
        now += 0.1
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(probe_times)]
    assert round(probe_times[0] - opened, 6) == 2.0
    assert gaps == [4.1, 8.1, 8.1, 8.1]  # interval after each failed probe: 4, 8, 8 (cap), 8


def test_the_first_success_closes_it_and_resets_the_interval() -> None:
    circuit, changes = make()
    t = fail_many(circuit, 20, 0.0)
    t += circuit.retry_after(t)
    assert circuit.allow(t)
    circuit.on_success(t + 0.05)
    assert state(circuit) == "closed"
    assert circuit.opened_at is None
    assert [c[:2] for c in changes] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert circuit.allow(t + 0.06)
    # The history was cleared: a fresh run of failures is needed to open again.
    t = fail_many(circuit, 19, t + 0.1)
    assert state(circuit) == "closed"
    t = fail_many(circuit, 1, t)
    assert state(circuit) == "open"
    assert circuit.retry_after(t - 0.01) == pytest.approx(2.0)


def test_a_probe_that_never_reports_is_replaced_after_the_interval() -> None:
    circuit, _ = make()
    t = fail_many(circuit, 20, 0.0)
    t += circuit.retry_after(t)
    assert circuit.allow(t)
    assert not circuit.allow(t + 1.9)
    assert circuit.allow(t + 2.0)


def test_stragglers_failing_while_open_change_nothing() -> None:
    circuit, _ = make()
    t = fail_many(circuit, 20, 0.0)
    before = circuit.retry_after(t)
    circuit.on_failure("app3", t)
    assert state(circuit) == "open"
    assert circuit.retry_after(t) == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0.0},
        {"min_calls": 0},
        {"failure_ratio": 1.0},
        {"min_authorizers": 0},
        {"probe_interval": 0.0},
        {"probe_interval": 5.0, "max_probe_interval": 2.0},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        OutageCircuit(**kwargs)  # type: ignore[arg-type]


def test_platform_unavailable_error_is_public_typed_and_pickles() -> None:
    assert "PlatformUnavailableError" in kuaishou_mp.__all__
    err = PlatformUnavailableError(retry_after=1.5, endpoint="app_info", app_id="ks1")
    assert isinstance(err, KuaishouError)
    assert "outage" in str(err)
    assert "app_id=ks1" in str(err)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is PlatformUnavailableError
    assert (back.retry_after, back.endpoint, back.app_id) == (1.5, "app_info", "ks1")
