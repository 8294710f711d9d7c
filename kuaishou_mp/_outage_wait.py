"""Bulk runs through an outage: wait for the platform (``on_outage="wait"``) or fail fast.

While the client's outage circuit is open, calls fail fast with
:class:`~kuaishou_mp.PlatformUnavailableError`. In a bulk run with ``on_outage="wait"`` an
item whose attempt the circuit refuses sleeps until the next probe may go and then goes on
with the same call (its retries so far still count), so the run pauses and resumes when the
platform is back (an item whose retries ran out before the circuit opened keeps its failure:
the circuit opens within about a second). Once
the outage has lasted ``max_outage`` seconds, every item still waiting, and every item after
it, is reported with the :class:`~kuaishou_mp.PlatformUnavailableError`. With
``on_outage="fail"`` the error is each item's result at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable
from contextvars import ContextVar
from typing import Any, Generic, Literal, TypeVar

from ._callstats import CallStats
from ._circuit import OutageCircuit
from ._validate import number, one_of
from .errors import PlatformUnavailableError
from .models import Authorizer

__all__ = [
    "DEFAULT_MAX_OUTAGE",
    "OnOutage",
    "check_outage_options",
    "pulled_without_waiting",
    "wait_for_circuit",
    "waiting_out_outages",
]

T = TypeVar("T")
A = TypeVar("A")
OnOutage = Literal["wait", "fail"]
"""What a bulk run does while the platform is unavailable."""
DEFAULT_MAX_OUTAGE = 60.0
"""Seconds a bulk run waits for the platform before the rest of it fails fast."""
_Call = Callable[[Authorizer | str, CallStats], Coroutine[Any, Any, T]]
_MIN_SLEEP = 0.05
_WAITING: ContextVar[tuple[OutageCircuit, float] | None] = ContextVar(
    "kuaishou_mp_outage_wait", default=None
)


def check_outage_options(on_outage: object, max_outage: object) -> None:
    """Raise :class:`InvalidInputError` for an ``on_outage`` or ``max_outage`` out of range."""
    one_of("on_outage", on_outage, ("wait", "fail"))
    number("max_outage", max_outage, low_ok=True)


def waiting_out_outages(
    call: _Call[T], circuit: OutageCircuit, on_outage: OnOutage, max_outage: float
) -> _Call[T]:
    """``call``, made to wait out outages of ``circuit`` (for ``on_outage="wait"``).

    The wait happens where the circuit refuses an attempt (:func:`wait_for_circuit`), so an
    item keeps its retry state across the outage instead of starting over.
    """
    if on_outage == "fail":
        return call
    waits = (circuit, max_outage)

    def waiting(authorizer: Authorizer | str, stats: CallStats) -> Coroutine[Any, Any, T]:
        # A context variable, not an argument: a reconciliation's calls go through the
        # client's public methods. Only a bulk run's workers make these calls, and each worker
        # is a task with its own context, so the variable is set once per worker and stays
        # set for its items: no wrapping coroutine and no reset on the per-call path.
        if _WAITING.get() is not waits:
            _WAITING.set(waits)
        return call(authorizer, stats)

    return waiting


def pulled_without_waiting(
    items: Iterable[A] | AsyncIterable[A], on_outage: OnOutage
) -> Iterable[A] | AsyncIterable[A]:
    """``items``, with what an async source awaits kept out of the run's outage wait.

    A worker pulls the next item in its own task, where :func:`waiting_out_outages` left the
    wait set: a call the source makes (to the same client, say) fails fast while the circuit
    is open, as any call outside the run's items does. A plain iterable cannot await a call.
    """
    if on_outage == "fail" or not isinstance(items, AsyncIterable):
        return items
    return _WithoutWait(items)


class _WithoutWait(Generic[A]):
    __slots__ = ("_items", "_iterator")

    def __init__(self, items: AsyncIterable[A]) -> None:
        self._items = items
        self._iterator: AsyncIterator[A] | None = None

    def __aiter__(self) -> AsyncIterator[A]:
        self._iterator = aiter(self._items)
        return self

    async def __anext__(self) -> A:
        assert self._iterator is not None
        token = _WAITING.set(None)
        try:
            return await anext(self._iterator)
        finally:
            _WAITING.reset(token)


async def wait_for_circuit(
    circuit: OutageCircuit,
    deadline: float | None,
    refusal: Callable[[float], PlatformUnavailableError],
) -> None:
    """Return once ``circuit`` lets an attempt go; raise ``refusal(now)`` if it may not wait.

    Only an item of a bulk run with ``on_outage="wait"`` on this circuit waits, and only until
    the outage has lasted its run's ``max_outage`` (or the call's ``deadline`` comes).
    """
    now = time.monotonic()
    if circuit.allow(now):
        return
    waits = _WAITING.get()
    if waits is None or waits[0] is not circuit:
        raise refusal(now)
    max_outage = waits[1]
    while True:
        opened = circuit.opened_at
        if opened is not None:
            limit = opened + max_outage if deadline is None else min(opened + max_outage, deadline)
            left = limit - now
            if left <= 0:
                raise refusal(now)
            await asyncio.sleep(max(_MIN_SLEEP, min(circuit.retry_after(now), left)))
            now = time.monotonic()
        if circuit.allow(now):
            return
