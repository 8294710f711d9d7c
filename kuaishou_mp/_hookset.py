"""Calling a client's hooks: build each event once, hand it to every hook, survive their bugs.

The call pipeline holds one :class:`HookSet` per client. With no hooks, ``enabled`` is false
and the pipeline builds no event at all, so hooks cost nothing unless configured. Each event
kind keeps only the hooks that override its method: a hook that overrides ``on_retry`` alone
is never called for attempts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from .errors import (
    APIError,
    InvalidInputError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseValidationError,
    ServerError,
    TransportError,
)
from .hooks import (
    AttemptEnd,
    AttemptStart,
    BulkProgressEvent,
    CallEnd,
    CircuitChange,
    CircuitState,
    Hooks,
    Outcome,
    RetryEvent,
    ThrottleEvent,
)

__all__ = ["HookSet", "outcome_of"]

logger = logging.getLogger("kuaishou_mp")

_METHODS = (
    "on_attempt_start",
    "on_attempt_end",
    "on_retry",
    "on_throttle",
    "on_circuit_change",
    "on_call_end",
    "on_bulk_progress",
)


def outcome_of(error: BaseException | None) -> Outcome:
    """The :data:`~kuaishou_mp.hooks.Outcome` of an attempt or a call that raised ``error``."""
    if error is None:
        return "ok"
    if isinstance(error, RateLimitedError):
        return "throttled"
    if isinstance(error, ServerError):
        return "server_error"
    if isinstance(error, APIError):
        return "platform_error"
    if isinstance(error, RequestTimeoutError):
        return "timeout"
    if isinstance(error, TransportError):
        return "transport_error"
    if isinstance(error, ResponseValidationError):
        return "invalid_response"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return "error"


def _details(error: BaseException | None) -> tuple[int | None, int | None]:
    """``(status, result_code)`` as far as ``error`` tells them."""
    if isinstance(error, APIError):
        return error.http_status, error.code
    if isinstance(error, TransportError):
        return error.status, None
    return None, None


class HookSet:
    """A client's hooks, and the one place that builds events and calls them.

    Raises:
        InvalidInputError: ``hooks`` is not an iterable, or an item of it is not a
            :class:`~kuaishou_mp.Hooks`.
    """

    __slots__ = ("_failed", "_hooks", "_targets", "_wants_attempts", "enabled")

    def __init__(self, hooks: Iterable[Hooks] = ()) -> None:
        if isinstance(hooks, Hooks) or not isinstance(hooks, Iterable):
            hint = " (wrap it in a list)" if isinstance(hooks, Hooks) else ""
            raise InvalidInputError(
                f"hooks must be a list of kuaishou_mp.Hooks instances, got "
                f"{type(hooks).__name__}{hint}"
            )
        self._hooks = tuple(hooks)
        for hook in self._hooks:
            if not isinstance(hook, Hooks):
                raise InvalidInputError(
                    f"hooks must be kuaishou_mp.Hooks instances, got {type(hook).__name__}"
                )
        # Per event kind, the bound methods that do something (not Hooks' own no-ops).
        self._targets: dict[str, tuple[tuple[Hooks, Callable[[Any], None]], ...]] = {
            name: tuple(
                (hook, getattr(hook, name))
                for hook in self._hooks
                if getattr(type(hook), name) is not getattr(Hooks, name)
            )
            for name in _METHODS
        }
        self._failed: set[int] = set()  # ids of hooks already warned about (held in _hooks)
        self.enabled = bool(self._hooks)
        self._wants_attempts = bool(
            self._targets["on_attempt_start"] or self._targets["on_attempt_end"]
        )

    @property
    def hooks(self) -> tuple[Hooks, ...]:
        """The hooks, in the order they are called."""
        return self._hooks

    def _emit(self, name: str, event: object) -> None:
        for hook, method in self._targets[name]:
            try:
                method(event)
            except Exception:  # a hook's bug must never break the call
                self._report(hook, name)

    def _report(self, hook: Hooks, name: str) -> None:
        first = id(hook) not in self._failed
        self._failed.add(id(hook))
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "hook %s.%s raised; the call goes on%s",
            type(hook).__qualname__,
            name,
            " (later failures of this hook are logged at DEBUG)" if first else "",
            exc_info=True,
        )

    def attempt_start(
        self,
        *,
        endpoint: str,
        method: str,
        url: str,
        app_id: str | None,
        attempt: int,
        limiter_wait: float = 0.0,
        learned_rate: float | None = None,
    ) -> AttemptStart | None:
        """Build the :class:`AttemptStart` of an attempt that goes now, and emit it.

        ``url`` must already be redacted (:func:`~kuaishou_mp._scrub.redact_url`; it depends
        on the endpoint only, so the pipeline computes it once per client and endpoint). Pass
        what this returns to :meth:`attempt_end` when the attempt ends, however it ends:
        ``None`` when no hook listens to attempts (then nothing was built).
        """
        if not self._wants_attempts:
            return None
        event = AttemptStart(
            endpoint, method, url, app_id, attempt, limiter_wait, time.time_ns(), learned_rate
        )
        if self._targets["on_attempt_start"]:
            self._emit("on_attempt_start", event)
        return event

    def attempt_end(
        self,
        start: AttemptStart | None,
        *,
        duration: float,
        error: BaseException | None = None,
        status: int | None = None,
        result_code: int | None = None,
    ) -> AttemptEnd | None:
        """Emit the :class:`AttemptEnd` of ``start``'s attempt (nothing when it is ``None``).

        Call it for every attempt begun, in a ``finally`` (a cancelled attempt too: its
        ``error`` is the ``CancelledError``). ``status`` and ``result_code`` default to what
        ``error`` carries; on success pass the answer's status (``result_code`` 1).
        """
        if start is None:
            return None
        if error is not None:
            error_status, error_code = _details(error)
            status = error_status if status is None else status
            result_code = error_code if result_code is None else result_code
        event = AttemptEnd(
            start,
            duration,
            outcome_of(error),
            status,
            result_code,
            None if error is None else type(error).__name__,
        )
        if self._targets["on_attempt_end"]:
            self._emit("on_attempt_end", event)
        return event

    def retry(
        self, *, endpoint: str, app_id: str | None, attempt: int, delay: float, error: BaseException
    ) -> None:
        """Emit a :class:`RetryEvent`: attempt ``attempt`` failed with ``error``."""
        if self._targets["on_retry"]:
            status, code = _details(error)
            self._emit(
                "on_retry",
                RetryEvent(endpoint, app_id, attempt, delay, type(error).__name__, status, code),
            )

    def throttle(
        self,
        *,
        endpoint: str,
        app_id: str | None,
        attempt: int,
        result_code: int,
        learned_rate: float | None = None,
    ) -> None:
        """Emit a :class:`ThrottleEvent`."""
        if self._targets["on_throttle"]:
            self._emit(
                "on_throttle", ThrottleEvent(endpoint, app_id, attempt, result_code, learned_rate)
            )

    def circuit_change(self, state: CircuitState, previous: CircuitState) -> None:
        """Emit a :class:`CircuitChange`: the outage circuit moved from ``previous`` to ``state``.

        The client's circuit calls it through
        :meth:`Observer.circuit_changed <kuaishou_mp._pipeline._observe.Observer.circuit_changed>`,
        whose signature is ``OutageCircuit``'s ``on_change``.
        """
        if self._targets["on_circuit_change"]:
            self._emit("on_circuit_change", CircuitChange(state, previous))

    def call_end(
        self,
        *,
        endpoint: str,
        method: str,
        app_id: str | None,
        attempts: int,
        duration: float,
        error: BaseException | None = None,
    ) -> None:
        """Emit a :class:`CallEnd`: the logical call ended with ``error`` (or succeeded)."""
        if self._targets["on_call_end"]:
            code = 1 if error is None else _details(error)[1]
            self._emit(
                "on_call_end",
                CallEnd(
                    endpoint,
                    method,
                    app_id,
                    attempts,
                    duration,
                    outcome_of(error),
                    None if error is None else type(error).__name__,
                    code,
                ),
            )

    def bulk_progress(self, event: BulkProgressEvent) -> None:
        """Emit a bulk run's :class:`BulkProgressEvent` (built by the run)."""
        if self._targets["on_bulk_progress"]:
            self._emit("on_bulk_progress", event)

    @property
    def wants_attempts(self) -> bool:
        """Whether any hook listens to attempts (else a client need build no attempt event)."""
        return self._wants_attempts

    @property
    def wants_bulk_progress(self) -> bool:
        """Whether any hook listens to bulk progress (else a run need build no event)."""
        return bool(self._targets["on_bulk_progress"])
