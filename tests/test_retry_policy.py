"""RetryPolicy on its own: classification, validation, the backoff bound, what a run raises."""

from __future__ import annotations

import asyncio

import pytest
import tenacity

from kuaishou_mp import (
    APIError,
    AuthError,
    BadRequestError,
    DomainNotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TokenExpiredError,
    TransportError,
)
from kuaishou_mp._pipeline import _retries


def _api(cls: type[APIError]) -> APIError:
    return cls("x", code=1)


def test_default_classification() -> None:
    policy = RetryPolicy()
    assert policy.should_retry(TransportError("x"))
    assert policy.should_retry(_api(ServerError))
    assert policy.should_retry(_api(RateLimitedError))
    for cls in (DomainNotFoundError, BadRequestError, AuthError, TokenExpiredError, APIError):
        assert not policy.should_retry(_api(cls))
    assert not policy.should_retry(asyncio.CancelledError())
    assert not policy.should_retry(ValueError())


def test_business_errors_are_never_retried_whatever_retry_on_says() -> None:
    policy = RetryPolicy(retry_on=(APIError,))
    assert policy.should_retry(_api(APIError))
    assert not policy.should_retry(_api(DomainNotFoundError))
    assert not policy.should_retry(_api(TokenExpiredError))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": True},
        {"backoff_base": 0},
        {"backoff_max": -1},
        {"deadline": 0},
    ],
)
def test_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_full_jitter_bound_per_attempt() -> None:
    policy = RetryPolicy(backoff_base=0.2, backoff_max=0.5)
    retrying = _retries.controller(
        policy, retry=policy.should_retry, elapsed=0.0, endpoint="e", app_id="a"
    )
    for attempt, high in ((1, 0.2), (2, 0.4), (3, 0.5), (6, 0.5)):
        state = tenacity.RetryCallState(retrying, fn=None, args=(), kwargs={})
        state.attempt_number = attempt
        waits = [retrying.wait(state) for _ in range(200)]
        assert all(0 <= w <= high for w in waits)
        assert max(waits) > high * 0.8  # the whole range is used, not a fixed delay


async def test_run_raises_the_last_real_error_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.002)
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        raise ServerError(f"attempt {len(calls)}", code=100200500)

    with pytest.raises(ServerError, match="attempt 3"):
        await _retries.run(attempt, policy, endpoint="e", app_id="a")
    assert len(calls) == 3


async def test_run_returns_after_a_transient_failure_and_stops_on_business_errors() -> None:
    policy = RetryPolicy(backoff_base=0.001, backoff_max=0.002)
    outcomes: list[BaseException | str] = [TransportError("t"), "ok"]

    async def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert await _retries.run(flaky, policy, endpoint="e", app_id="a") == "ok"
    calls: list[int] = []

    async def refused() -> str:
        calls.append(1)
        raise DomainNotFoundError("gone", code=403106)

    with pytest.raises(DomainNotFoundError):
        await _retries.run(refused, policy, endpoint="e", app_id="a")
    assert calls == [1]
