"""The client-wide retry budget (configuration and meter), on a virtual clock."""

from __future__ import annotations

import attrs
import pytest

import kuaishou_mp
from kuaishou_mp import RetryBudget
from kuaishou_mp._budget_meter import BudgetMeter


def withdraw_all(meter: BudgetMeter, now: float, limit: int = 10_000) -> int:
    n = 0
    while n < limit and meter.try_withdraw(now):
        n += 1
    return n


def refusing(meter: BudgetMeter) -> bool:
    # Read through a function so the type checker does not narrow the property between calls.
    return meter.refusing


def test_defaults_are_finagles_and_the_class_is_public_and_frozen() -> None:
    budget = RetryBudget()
    assert (budget.ratio, budget.window, budget.min_per_second) == (0.2, 10.0, 10.0)
    assert kuaishou_mp.RetryBudget is RetryBudget
    assert "RetryBudget" in kuaishou_mp.__all__
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        budget.ratio = 1.0  # type: ignore[misc]


def test_the_reserve_alone_allows_min_per_second_times_window() -> None:
    meter = RetryBudget().build()
    assert withdraw_all(meter, 0.0) == 100
    assert refusing(meter)


def test_retries_are_a_share_of_first_attempts() -> None:
    meter = RetryBudget(ratio=0.2, min_per_second=0.0).build()
    for i in range(100):
        meter.record_request(i * 0.01)
    assert not refusing(meter)
    assert withdraw_all(meter, 1.0) == 20
    assert refusing(meter)
    meter.record_request(1.1)
    assert not meter.try_withdraw(1.1)  # 101 * 0.2 - 20 < 1
    for _ in range(4):
        meter.record_request(1.2)
    assert meter.try_withdraw(1.2)  # 105 * 0.2 - 20 == 1
    assert not refusing(meter)


def test_first_attempts_and_retries_leave_the_window() -> None:
    meter = RetryBudget(ratio=0.5, window=10.0, min_per_second=0.0).build()
    for _ in range(20):
        meter.record_request(0.0)
    assert withdraw_all(meter, 0.5) == 10
    # Ten seconds later both the deposits and the withdrawals are gone.
    assert meter.available(11.0) == 0.0
    for _ in range(8):
        meter.record_request(11.0)
    assert withdraw_all(meter, 11.0) == 4


def test_under_a_steady_failure_retries_stay_near_the_ratio() -> None:
    meter = RetryBudget().build()
    first = retries = 0
    t = 0.0
    while t < 60.0:  # 200 first attempts/s, every one fails and asks for a retry
        meter.record_request(t)
        first += 1
        retries += meter.try_withdraw(t)
        t += 0.005
    # 20% plus the reserve of 10/s: 40 + 10 = 50 retries/s.
    assert retries / 60.0 == pytest.approx(50.0, rel=0.1)
    assert retries / first < 0.3


def test_a_budget_of_zero_allows_no_retry() -> None:
    meter = RetryBudget(ratio=0.0, min_per_second=0.0).build()
    meter.record_request(0.0)
    assert not meter.try_withdraw(0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ratio": -0.1},
        {"ratio": float("inf")},
        {"ratio": True},
        {"window": 0.0},
        {"window": "10"},
        {"min_per_second": -1.0},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="RetryBudget"):
        RetryBudget(**kwargs)  # type: ignore[arg-type]
