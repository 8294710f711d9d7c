"""The retry policy as tenacity strategies: ``retry`` (what), ``wait`` (how long), ``stop``.

A fresh ``AsyncRetrying`` is built per call, and only after the call's first attempt failed:
one shared instance would share its statistics and state across concurrent tasks, and most
calls succeed at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar

import tenacity

from .._endpoints import Idempotency
from ..errors import APIError, ServerError, TransportError
from ..retry import RetryPolicy

__all__ = ["Retryable", "Veto", "controller", "resume", "retryable", "run"]

logger = logging.getLogger("kuaishou_mp")

T = TypeVar("T")
Retryable: TypeAlias = Callable[[BaseException], bool]
Veto: TypeAlias = Callable[[BaseException], bool]
"""Asked last, just before a retry would start: ``True`` keeps it from starting."""


def retryable(policy: RetryPolicy, idempotency: Idempotency) -> Retryable:
    """Which failures of a call with this ``idempotency`` the ``policy`` retries."""
    should_retry = policy.should_retry
    if idempotency is not Idempotency.ONCE:
        return should_retry

    def once(exc: BaseException) -> bool:
        # Only what certainly did not reach the platform, or was refused before acting.
        if not should_retry(exc):
            return False
        if isinstance(exc, TransportError):
            return exc.request_sent is False
        return not isinstance(exc, ServerError)

    return once


class _stop_if_vetoed(tenacity.stop.stop_base):
    def __init__(self, veto: Veto) -> None:
        self.veto = veto

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        return exc is not None and self.veto(exc)


def controller(
    policy: RetryPolicy,
    *,
    retry: Retryable,
    elapsed: float,
    endpoint: str,
    app_id: str,
    veto: Veto | None = None,
) -> tenacity.AsyncRetrying:
    """The tenacity controller for one call whose first attempt began ``elapsed`` seconds ago.

    ``veto`` is consulted after every other stop condition let a retry through, so a gate that
    counts what it allows counts only retries that really start.
    """
    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(policy.max_attempts)
    if policy.deadline is not None:
        stop = stop | tenacity.stop_before_delay(max(policy.deadline - elapsed, 0.0))
    if veto is not None:
        stop = stop | _stop_if_vetoed(veto)
    return tenacity.AsyncRetrying(
        stop=stop,
        wait=tenacity.wait_random_exponential(
            multiplier=policy.backoff_base, max=policy.backoff_max
        ),
        retry=tenacity.retry_if_exception(retry),
        before_sleep=_log_retry(endpoint, app_id),
        reraise=True,
    )


async def resume(
    first_failure: Exception,
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    retry: Retryable,
    started: float,
    endpoint: str,
    app_id: str,
    veto: Veto | None = None,
) -> T:
    """Carry on after a first attempt (begun at monotonic ``started``) raised ``first_failure``.

    Raises ``first_failure`` itself when it is not retried.
    """
    if policy.max_attempts == 1 or not retry(first_failure):
        raise first_failure
    # The controller replays the first failure as its attempt 1, so its waits, stop conditions
    # and log lines count it like any other.
    replay = [first_failure]

    async def again() -> T:
        if replay:
            raise replay.pop()
        return await attempt()

    retrying = controller(
        policy,
        retry=retry,
        elapsed=time.monotonic() - started,
        endpoint=endpoint,
        app_id=app_id,
        veto=veto,
    )
    result: T = await retrying(again)
    return result


async def run(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    endpoint: str,
    app_id: str,
    retry: Retryable | None = None,
) -> T:
    """Run ``attempt`` under ``policy`` and return its result or raise its last error."""
    started = time.monotonic()
    try:
        return await attempt()
    except Exception as exc:  # not BaseException: CancelledError is never retried
        first_failure = exc
    return await resume(
        first_failure,
        attempt,
        policy,
        retry=retry or policy.should_retry,
        started=started,
        endpoint=endpoint,
        app_id=app_id,
    )


def _log_retry(endpoint: str, app_id: str) -> Callable[[tenacity.RetryCallState], None]:
    # Our own callback: tenacity's stock logging callback formats the exception text, and
    # ours must never print anything but metadata.
    def log(state: tenacity.RetryCallState) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        exc = state.outcome.exception() if state.outcome is not None else None
        detail = ""
        if isinstance(exc, APIError):
            detail = f" code={exc.code}"
        elif isinstance(exc, TransportError) and exc.status is not None:
            detail = f" status={exc.status}"
        logger.info(
            "retrying %s app_id=%s after %s%s attempt=%d sleep=%.3fs",
            endpoint,
            app_id,
            type(exc).__name__,
            detail,
            state.attempt_number,
            state.upcoming_sleep,
            extra={
                "kuaishou_endpoint": endpoint,
                "kuaishou_app_id": app_id,
                "kuaishou_attempt": state.attempt_number,
            },
        )

    return log
