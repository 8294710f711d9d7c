"""Every decision about how long one attempt may take, in one place.

:class:`~kuaishou_mp.Timeout` is what the caller configures; this module turns it into what an
attempt is given. Attempts are timed by one shared timer per timeout value (see
:mod:`kuaishou_mp._attempt_timer`), so aiohttp is then given no total of its own. An attempt
whose timeout a nearing deadline cuts short, a Python without ``Task.uncancel``, or a client
past :data:`MAX_TIMERS` distinct values uses aiohttp's per-request timer instead.
"""

from __future__ import annotations

import math
from typing import Final

import aiohttp

from .._attempt_timer import AttemptTimer, attempt_timer
from ..errors import RequestTimeoutError
from ..timeout import Timeout

__all__ = ["MAX_TIMERS", "AttemptTimeouts", "TimerPool", "cut_to_deadline"]

# Copies made with many different timeouts (a per-call budget, say) fall back to aiohttp's
# per-request timer rather than growing the set of shared ones without bound.
MAX_TIMERS: Final = 8


class TimerPool:
    """The attempt timers of one client and all its copies, one per timeout value."""

    __slots__ = ("timers",)

    def __init__(self) -> None:
        self.timers: dict[float, AttemptTimer] = {}

    def timer_for(self, timeout: float | None) -> AttemptTimer | None:
        """The timer for ``timeout`` seconds (``None``: none can or need be used)."""
        if timeout is None:
            return None
        timer = self.timers.get(timeout)
        if timer is None and len(self.timers) < MAX_TIMERS:
            timer = attempt_timer(timeout)
            if timer is not None:
                self.timers[timeout] = timer
        return timer

    def close(self) -> None:
        """Stop every timer (the client is closing)."""
        for timer in self.timers.values():
            timer.close()


class AttemptTimeouts:
    """One :class:`Timeout`, prepared once for the attempts made with it.

    ``client_timeout`` and ``timer`` serve most attempts as they are; only an attempt that
    would outlive the call's deadline (``deadline - now < total``) goes through :meth:`cut`.
    """

    __slots__ = ("client_timeout", "full", "timeout", "timer", "total")

    def __init__(self, timeout: Timeout, pool: TimerPool | None) -> None:
        self.timeout = timeout
        self.timer = None if pool is None else pool.timer_for(timeout.total)
        self.full = aiohttp.ClientTimeout(total=timeout.total, connect=timeout.connect)
        self.client_timeout = (
            self.full
            if self.timer is None
            else aiohttp.ClientTimeout(total=None, connect=timeout.connect)
        )
        self.total = math.inf if timeout.total is None else timeout.total

    def cut(
        self, deadline: float, now: float, *, endpoint: str, app_id: str | None
    ) -> aiohttp.ClientTimeout:
        """aiohttp's timeout for an attempt starting at ``now`` that must end by ``deadline``.

        Raises:
            RequestTimeoutError: The deadline has passed.
        """
        return cut_to_deadline(self.full, deadline, now, endpoint=endpoint, app_id=app_id)


def cut_to_deadline(
    timeout: aiohttp.ClientTimeout,
    deadline: float | None,
    now: float,
    *,
    endpoint: str,
    app_id: str | None,
) -> aiohttp.ClientTimeout:
    """``timeout``, cut to what is left of the call's deadline.

    Raises:
        RequestTimeoutError: The deadline has passed.
    """
    if deadline is None:
        return timeout
    left = deadline - now
    if left <= 0:
        raise RequestTimeoutError(
            "the call's retry deadline ran out", endpoint=endpoint, app_id=app_id
        )
    if timeout.total is None or left < timeout.total:
        return aiohttp.ClientTimeout(total=left, connect=timeout.connect)
    return timeout
