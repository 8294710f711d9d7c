"""Where later features plug into the pipeline: observing attempts, gating retries, throttling.

Each seam is a small protocol the pipeline calls; the defaults cost nothing (the observer is
``None`` and never called, the gate allows every retry, the throttle feedback penalises the
limiter and lets the retry layer decide, as before).
"""

from __future__ import annotations

from typing import Protocol

from ..errors import RateLimitedError
from ..ratelimit import Limiter
from ._request import Request

__all__ = [
    "AllowEveryRetry",
    "AttemptObserver",
    "AttemptRecord",
    "PenalizeLimiter",
    "RetryGate",
    "ThrottleFeedback",
]


class AttemptRecord:
    """One attempt, as an observer sees it: metadata only, never a token or a body.

    Filled in two steps: the start fields before the request is sent, the end fields
    (``status``, ``result_code``, ``duration``, ``error``) when it has been decoded or failed.
    ``url`` is the request URL without its query string (the query carries the secrets);
    ``limiter_wait`` the seconds spent waiting for admission before this attempt.
    """

    __slots__ = (
        "app_id",
        "attempt",
        "duration",
        "endpoint",
        "error",
        "limiter_wait",
        "method",
        "result_code",
        "status",
        "url",
    )

    def __init__(
        self,
        endpoint: str,
        method: str,
        url: str,
        app_id: str | None,
        attempt: int,
        limiter_wait: float,
    ) -> None:
        self.endpoint = endpoint
        self.method = method
        self.url = url
        self.app_id = app_id
        self.attempt = attempt
        self.limiter_wait = limiter_wait
        self.status: int | None = None
        self.result_code: int | None = None
        self.duration = 0.0
        self.error: str | None = None  # the exception's class name

    @classmethod
    def start(cls, request: Request, base_url: str, limiter_wait: float) -> AttemptRecord:
        """The record of ``request``'s next attempt (``base_url`` as shown: no password)."""
        endpoint = request.endpoint
        return cls(
            endpoint.name,
            endpoint.method,
            base_url + endpoint.path,  # no query: it carries the secrets
            request.app_id,
            request.stats.attempts,
            limiter_wait,
        )

    def finish(
        self, status: int | None, code: int | None, exc: BaseException | None, duration: float
    ) -> None:
        """Fill in the end fields."""
        self.status = status
        self.result_code = code
        self.duration = duration
        self.error = None if exc is None else type(exc).__name__


class AttemptObserver(Protocol):
    """Told when every attempt starts and ends; must not raise, must not block."""

    def attempt_started(self, record: AttemptRecord) -> None:
        """The attempt was admitted and is about to be sent."""

    def attempt_ended(self, record: AttemptRecord) -> None:
        """The attempt has an answer or an error (``record``'s end fields are filled in)."""


class RetryGate(Protocol):
    """Client-wide say over retries (a retry budget, an outage circuit)."""

    def allow_retry(self, request: Request, failure: BaseException) -> bool:
        """Asked just before a retry would start, after the policy allowed it."""


class ThrottleFeedback(Protocol):
    """What the limiter layer does when the platform answered "throttled"."""

    async def throttled(self, request: Request, error: RateLimitedError) -> bool:
        """Report the throttling; ``True`` sends the call back through the limiter (spending
        no retry attempt), ``False`` hands ``error`` on to the retry layer."""


class AllowEveryRetry:
    """The default gate: the retry policy alone decides."""

    __slots__ = ()

    def allow_retry(self, request: Request, failure: BaseException) -> bool:
        """Always ``True``."""
        return True


class PenalizeLimiter:
    """The default feedback: slow the authorizer's limiter down, then let the retry layer decide."""

    __slots__ = ("limiter",)

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    async def throttled(self, request: Request, error: RateLimitedError) -> bool:
        """Penalise ``request.app_id`` in the limiter; never re-admit."""
        if request.app_id is not None:
            await self.limiter.penalize(request.app_id)
        return False
