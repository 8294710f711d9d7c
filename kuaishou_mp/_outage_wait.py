"""Bulk runs through an outage: wait for the platform (``on_outage="wait"``) or fail fast.

While the client's outage circuit is open, calls fail fast with
:class:`~kuaishou_mp.PlatformUnavailableError`. In a bulk run with ``on_outage="wait"`` the
worker holding such an item sleeps until the next probe may go and tries the item again, so
the run pauses and resumes when the platform is back (an item whose retries ran out before
the circuit opened keeps its failure: the circuit opens within about a second). Once
the outage has lasted ``max_outage`` seconds, every item still waiting, and every item after
it, is reported with the :class:`~kuaishou_mp.PlatformUnavailableError`. With
``on_outage="fail"`` the error is each item's result at once.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from ._callstats import CallStats
from ._circuit import OutageCircuit
from .errors import InvalidInputError, PlatformUnavailableError
from .models import Authorizer

__all__ = ["DEFAULT_MAX_OUTAGE", "OnOutage", "check_outage_options", "waiting_out_outages"]

T = TypeVar("T")
OnOutage = Literal["wait", "fail"]
"""What a bulk run does while the platform is unavailable."""
DEFAULT_MAX_OUTAGE = 60.0
"""Seconds a bulk run waits for the platform before the rest of it fails fast."""
_Call = Callable[[Authorizer | str, CallStats], Coroutine[Any, Any, T]]
_MIN_SLEEP = 0.05


def check_outage_options(on_outage: object, max_outage: object) -> None:
    """Raise :class:`InvalidInputError` for an ``on_outage`` or ``max_outage`` out of range."""
    if on_outage not in ("wait", "fail"):
        raise InvalidInputError(f'on_outage must be "wait" or "fail", not {on_outage!r}')
    if (
        isinstance(max_outage, bool)
        or not isinstance(max_outage, (int, float))
        or not (max_outage >= 0 and math.isfinite(max_outage))
    ):
        raise InvalidInputError(f"max_outage must be seconds >= 0, not {max_outage!r}")


def waiting_out_outages(
    call: _Call[T], circuit: OutageCircuit, on_outage: OnOutage, max_outage: float
) -> _Call[T]:
    """``call``, made to wait out outages of ``circuit`` (for ``on_outage="wait"``)."""
    if on_outage == "fail":
        return call

    async def waiting(authorizer: Authorizer | str, stats: CallStats) -> T:
        while True:
            try:
                return await call(authorizer, stats)
            except PlatformUnavailableError as exc:
                if not await _wait_for_probe(circuit, max_outage, exc.retry_after):
                    raise

    return waiting


async def _wait_for_probe(
    circuit: OutageCircuit, max_outage: float, retry_after: float | None
) -> bool:
    """Sleep until the item may try again; ``False`` once the outage outlasted ``max_outage``."""
    opened = circuit.opened_at
    if opened is None:
        return True  # closed meanwhile: go again now
    left = opened + max_outage - time.monotonic()
    if left <= 0:
        return False
    await asyncio.sleep(max(_MIN_SLEEP, min(retry_after or 0.0, left)))
    return True
