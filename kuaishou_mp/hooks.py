"""Hooks: see every attempt, retry, throttled answer, circuit change and bulk run's progress.

Subclass :class:`Hooks`, override the methods you need and pass an instance to the client.
Every method is synchronous and is called on the event loop, in the task making the call, at
the moment the thing happens: keep it short (count, record, hand off), never block. A hook that
raises is logged once and ignored; the call goes on as if it had not been there.

Events carry metadata only: the endpoint, the HTTP method, the URL with every secret replaced
by ``REDACTED``, the app id, counts, codes, class names and durations. Never a token, a
secret, a ticket or an authorization code.

:class:`kuaishou_mp.otel.OpenTelemetryHooks` turns these events into OpenTelemetry spans and
metrics.
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = [
    "AttemptEnd",
    "AttemptStart",
    "BulkProgressEvent",
    "CallEnd",
    "CircuitChange",
    "CircuitState",
    "Hooks",
    "Outcome",
    "RetryEvent",
    "ThrottleEvent",
]

Outcome = Literal[
    "ok",
    "platform_error",
    "throttled",
    "server_error",
    "timeout",
    "transport_error",
    "invalid_response",
    "cancelled",
    "error",
]
"""How an attempt or a call ended, a small fixed vocabulary (fit for a metric label):

``ok``; ``platform_error`` (an :class:`~kuaishou_mp.APIError` other than the two below);
``throttled`` (:class:`~kuaishou_mp.RateLimitedError`); ``server_error``
(:class:`~kuaishou_mp.ServerError`); ``timeout`` (:class:`~kuaishou_mp.RequestTimeoutError`);
``transport_error`` (any other :class:`~kuaishou_mp.TransportError`: no connection, an HTTP
error status, a body too large); ``invalid_response``
(:class:`~kuaishou_mp.ResponseValidationError`); ``cancelled`` (the calling task was
cancelled); ``error`` (anything else).
"""

CircuitState = Literal["closed", "open", "half_open"]
"""The outage circuit's state: ``closed`` (calls flow), ``open`` (calls fail fast),
``half_open`` (one probe call is let through)."""


@attrs.frozen
class AttemptStart:
    """One request is about to be sent (the rate limiter has let it go).

    Each attempt's :class:`AttemptEnd` carries this very object as ``start``: hooks that keep
    state per attempt (an open span, a timer) match the two by identity
    (``end.start is start``), which holds however many attempts run at once.

    Attributes:
        endpoint: The endpoint name (``"app_info"``, ``"server_domain"``, ...).
        method: The HTTP method (``"GET"``, ``"POST"``).
        url: The request URL with every secret replaced by ``REDACTED``.
        app_id: The authorizer's app id, or ``None`` for a component-level call.
        attempt: 1 for the first attempt of a call, 2 for its first retry, and so on.
        limiter_wait: Seconds this attempt waited for the rate limiter before it went.
        started_at_ns: Wall-clock time the request went, in nanoseconds since the epoch
            (``time.time_ns()``), for exporters that want the real start time.
        learned_rate: The component-wide rate (calls per second) the client has learned
            from throttling, if it learns one, at the time the attempt went.
    """

    endpoint: str
    method: str
    url: str
    app_id: str | None
    attempt: int
    limiter_wait: float
    started_at_ns: int
    learned_rate: float | None = None


@attrs.frozen
class AttemptEnd:
    """One request ended: with an answer (good or bad) or with a failure.

    Attributes:
        start: The :class:`AttemptStart` of this attempt (the same object).
        duration: Seconds from sending the request to the end of the attempt (decoding
            the answer included, the limiter wait not).
        outcome: How the attempt ended (see :data:`Outcome`).
        status: The HTTP status code, or ``None`` when no answer arrived.
        result_code: The platform's ``result`` code (1 on success), or ``None`` when no
            JSON result arrived.
        error_type: The class name of the error the attempt raised, or ``None`` on success.
    """

    start: AttemptStart
    duration: float
    outcome: Outcome
    status: int | None = None
    result_code: int | None = None
    error_type: str | None = None

    @property
    def endpoint(self) -> str:
        """The endpoint name (from :attr:`start`)."""
        return self.start.endpoint

    @property
    def app_id(self) -> str | None:
        """The authorizer's app id (from :attr:`start`)."""
        return self.start.app_id

    @property
    def attempt(self) -> int:
        """The attempt number, 1 for the first (from :attr:`start`)."""
        return self.start.attempt

    @property
    def ok(self) -> bool:
        """Whether the attempt succeeded."""
        return self.error_type is None


@attrs.frozen
class RetryEvent:
    """A failed attempt will be retried after a delay.

    Attributes:
        endpoint: The endpoint name.
        app_id: The authorizer's app id, or ``None`` for a component-level call.
        attempt: The number of the attempt that failed (the next one is ``attempt + 1``).
        delay: Seconds the client waits before the next attempt.
        error_type: The class name of the error that is retried.
        status: The failed attempt's HTTP status code, or ``None`` when no answer arrived.
        result_code: The failed attempt's platform result code, if a result arrived.
    """

    endpoint: str
    app_id: str | None
    attempt: int
    delay: float
    error_type: str
    status: int | None = None
    result_code: int | None = None


@attrs.frozen
class ThrottleEvent:
    """The platform answered that it is throttling (``400002`` or ``100100402``).

    Attributes:
        endpoint: The endpoint name.
        app_id: The authorizer's app id, or ``None`` for a component-level call.
        attempt: The number of the attempt that was throttled.
        result_code: The platform's result code.
        learned_rate: The component-wide rate (calls per second) the client learned after
            this answer, if it learns one.
    """

    endpoint: str
    app_id: str | None
    attempt: int
    result_code: int
    learned_rate: float | None = None


@attrs.frozen
class CircuitChange:
    """The outage circuit changed state.

    Attributes:
        state: The new state.
        previous: The state before.
    """

    state: CircuitState
    previous: CircuitState


@attrs.frozen
class CallEnd:
    """A logical call ended (after all its attempts), with a result or an error.

    Attributes:
        endpoint: The endpoint name.
        method: The HTTP method.
        app_id: The authorizer's app id, or ``None`` for a component-level call.
        attempts: How many requests the call sent.
        duration: Seconds from the call's start to its end (waits and retries included).
        outcome: How the call ended (see :data:`Outcome`).
        error_type: The class name of the error the call raised, or ``None`` on success.
        result_code: The platform's result code of the last answer, if one arrived.
    """

    endpoint: str
    method: str
    app_id: str | None
    attempts: int
    duration: float
    outcome: Outcome
    error_type: str | None = None
    result_code: int | None = None


@attrs.frozen
class BulkProgressEvent:
    """A bulk run's counters changed: it started, handed out a result, or finished.

    The counters are cumulative for the run (a snapshot of its
    :class:`~kuaishou_mp.BulkProgress`), so a hook can turn them into gauges without keeping
    its own count.

    Attributes:
        run_id: Tells concurrent runs apart (unique among the runs alive in the process).
        endpoint: The endpoint the run calls.
        in_flight: Calls under way.
        done: Results handed out so far.
        ok: Of those, successes.
        failed: Of those, failures.
        finished: Whether the run is over (this is its last event).
    """

    run_id: int
    endpoint: str
    in_flight: int
    done: int
    ok: int
    failed: int
    finished: bool = False


class Hooks:
    """Base class of hooks: every method does nothing; override the ones you need.

    Methods are synchronous and run in the task making the call: nothing is awaited on the
    hot path, so a hook must not block. A method that raises is logged (a warning the first
    time for this hook object, then at DEBUG) and the call carries on.

    Example:
        ```python
        class CountRetries(Hooks):
            def __init__(self) -> None:
                self.retries = 0

            def on_retry(self, event: RetryEvent) -> None:
                self.retries += 1
        ```
    """

    def on_attempt_start(self, event: AttemptStart) -> None:
        """A request is about to be sent."""

    def on_attempt_end(self, event: AttemptEnd) -> None:
        """A request ended (``event.start`` is the matching :class:`AttemptStart`)."""

    def on_retry(self, event: RetryEvent) -> None:
        """A failed attempt will be retried after ``event.delay`` seconds."""

    def on_throttle(self, event: ThrottleEvent) -> None:
        """The platform answered that it is throttling."""

    def on_circuit_change(self, event: CircuitChange) -> None:
        """The outage circuit opened, half-opened or closed."""

    def on_call_end(self, event: CallEnd) -> None:
        """A logical call ended, after all its attempts."""

    def on_bulk_progress(self, event: BulkProgressEvent) -> None:
        """A bulk run started, handed out a result, or finished."""
