"""Retry policy: which failures are retried, how long to back off, and the per-call deadline.

Built on tenacity with a fresh ``AsyncRetrying`` per call, since one shared instance shares its
statistics and state across concurrent tasks.

Which calls are safe to repeat:

* ``app_info``, domain ``get`` and ``set`` are idempotent: retried as they are.
* ``add`` is retried as it is: adding a domain that is already configured leaves the list as it
  was, so a second ``add`` after an ambiguous failure cannot change the outcome.
* ``delete`` is not idempotent on the wire: when a retry follows a failure after which the first
  attempt may have reached the platform (a timeout, a dropped connection, a 5xx, a server error)
  and the retry answers 403106 (domain not found), the client confirms with a ``get``. If none
  of the domains to delete is configured any more, the delete succeeded and the ``get`` result is
  returned; otherwise the :class:`~kuaishou_mp.DomainNotFoundError` is raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import tenacity

from .errors import (
    APIError,
    AuthError,
    BadRequestError,
    DomainNotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)

__all__ = ["NEVER_RETRIED", "RetryPolicy"]

logger = logging.getLogger("kuaishou_mp")

T = TypeVar("T")

NEVER_RETRIED: tuple[type[BaseException], ...] = (
    DomainNotFoundError,
    BadRequestError,
    AuthError,
)
"""Business errors: repeating the call cannot change the answer, so no policy retries them."""


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"RetryPolicy.{attribute.name} must be an integer >= 1, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name == "deadline":
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"RetryPolicy.{attribute.name} must be a positive number, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """How a call is retried.

    Args:
        max_attempts: Attempts in all, the first included (``1`` turns retries off).
        backoff_base: Seconds; the wait after attempt ``n`` is uniform in
            ``[0, min(backoff_max, backoff_base * 2**(n - 1))]`` ("full jitter").
        backoff_max: Cap on one wait, seconds.
        deadline: Seconds for the whole call, retries and waits included, or ``None``. No wait
            starts that would end past it, and each attempt's timeout is cut to what is left.
        retry_on: Exception classes that are retried. Business errors
            (:data:`NEVER_RETRIED`) are never retried, whatever this says.

    Raises:
        ValueError: A setting is out of range.
    """

    max_attempts: int = attrs.field(default=4, validator=_positive_int)
    backoff_base: float = attrs.field(default=0.2, validator=_positive)
    backoff_max: float = attrs.field(default=5.0, validator=_positive)
    deadline: float | None = attrs.field(default=60.0, validator=_positive)
    retry_on: tuple[type[BaseException], ...] = (TransportError, ServerError, RateLimitedError)

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(max_attempts=1)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether this policy retries ``exc`` (``CancelledError`` and business errors: never).

        Args:
            exc: The exception an attempt raised.
        """
        return isinstance(exc, self.retry_on) and not isinstance(exc, NEVER_RETRIED)

    async def _run(self, attempt: Callable[[], Awaitable[T]], *, endpoint: str, app_id: str) -> T:
        """Run ``attempt`` under this policy and return its result or raise its last error."""
        started = time.monotonic()
        try:
            return await attempt()
        except Exception as exc:  # not BaseException: CancelledError is never retried
            first_failure = exc
        return await self._resume(
            first_failure, attempt, started=started, endpoint=endpoint, app_id=app_id
        )

    async def _resume(
        self,
        first_failure: Exception,
        attempt: Callable[[], Awaitable[T]],
        *,
        started: float,
        endpoint: str,
        app_id: str,
    ) -> T:
        """Carry on after a first attempt (begun at monotonic ``started``) raised ``first_failure``.

        Raises ``first_failure`` itself when the policy does not retry it. Callers that make
        the first attempt themselves (the client's hot path) skip a coroutine frame per call.
        """
        if self.max_attempts == 1 or not self.should_retry(first_failure):
            raise first_failure
        # Most calls succeed at once, so the retry controller is built only after a failure: a
        # fresh AsyncRetrying for this call alone. It replays the first failure as its attempt 1,
        # so its waits, stop conditions and log lines count it like any other.
        replay = [first_failure]

        async def again() -> T:
            if replay:
                raise replay.pop()
            return await attempt()

        retrying = self._retrying(
            endpoint=endpoint, app_id=app_id, elapsed=time.monotonic() - started
        )
        result: T = await retrying(again)
        return result

    def _retrying(self, *, endpoint: str, app_id: str, elapsed: float) -> tenacity.AsyncRetrying:
        stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(self.max_attempts)
        if self.deadline is not None:
            stop = stop | tenacity.stop_before_delay(max(self.deadline - elapsed, 0.0))
        return tenacity.AsyncRetrying(
            stop=stop,
            wait=tenacity.wait_random_exponential(
                multiplier=self.backoff_base, max=self.backoff_max
            ),
            retry=tenacity.retry_if_exception(self.should_retry),
            before_sleep=_log_retry(endpoint, app_id),
            reraise=True,
        )


def _log_retry(endpoint: str, app_id: str) -> Callable[[tenacity.RetryCallState], None]:
    # Our own callback: tenacity's stock logging callback formats the exception text, and
    # ours must never print anything but metadata.
    def log(state: tenacity.RetryCallState) -> None:
        if not logger.isEnabledFor(logging.WARNING):
            return
        exc = state.outcome.exception() if state.outcome is not None else None
        detail = ""
        if isinstance(exc, APIError):
            detail = f" code={exc.code}"
        elif isinstance(exc, TransportError) and exc.status is not None:
            detail = f" status={exc.status}"
        logger.warning(
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
