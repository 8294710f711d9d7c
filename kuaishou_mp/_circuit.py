"""The outage circuit: stop sending while the platform is down, probe, resume on success.

Pure state machine on a clock the caller passes in:

* ``closed``: every call goes. Results of the last ``window`` seconds are counted; when at
  least ``min_calls`` of them finished, more than ``failure_ratio`` of those failed with a
  transient error, and the failures came from at least ``min_authorizers`` distinct
  authorizers (one broken mini-program is not an outage), the circuit opens.
* ``open``: calls fail fast (the caller raises ``PlatformUnavailableError``). One probe is let
  through once ``probe_interval`` has passed, and the circuit is ``half_open`` while it runs.
* ``half_open``: the probe is in flight; other calls still fail fast. Its success (or any
  success) closes the circuit; its failure reopens it with the interval doubled, up to
  ``max_probe_interval``. A probe that never reports is replaced after the interval.

Recording a success while closed is two integer increments on a preallocated ring.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from ._windows import DistinctKeys, SlidingCount

CircuitState = Literal["closed", "open", "half_open"]
"""The states of :class:`OutageCircuit`."""

WINDOW = 10.0
MIN_CALLS = 20
FAILURE_RATIO = 0.5
# Ten, not a handful: a few broken mini-programs failing together are not an outage, and a
# provider with only a few authorizers cannot overload the platform anyway (the retry budget
# still bounds its retries).
MIN_AUTHORIZERS = 10
PROBE_INTERVAL = 2.0
MAX_PROBE_INTERVAL = 30.0

_BUCKETS = 10


class OutageCircuit:
    """Decides whether a call may be sent while the platform may be down.

    Wiring: :meth:`allow` before each attempt is sent (``False``: raise
    ``PlatformUnavailableError`` with :meth:`retry_after`); :meth:`on_success` after any
    answer that proves the platform up (business errors and throttles included: the platform
    answered); :meth:`on_failure` after a transient failure (5xx, connection error, timeout,
    server error).
    """

    __slots__ = (
        "_calls",
        "_failed_keys",
        "_failure_ratio",
        "_failures",
        "_interval",
        "_max_interval",
        "_min_authorizers",
        "_min_calls",
        "_next_probe",
        "_on_change",
        "_opened_at",
        "_probe_interval",
        "state",
    )

    def __init__(
        self,
        *,
        window: float = WINDOW,
        min_calls: int = MIN_CALLS,
        failure_ratio: float = FAILURE_RATIO,
        min_authorizers: int = MIN_AUTHORIZERS,
        probe_interval: float = PROBE_INTERVAL,
        max_probe_interval: float = MAX_PROBE_INTERVAL,
        on_change: Callable[[CircuitState, CircuitState, float], None] | None = None,
    ) -> None:
        """Create a closed circuit.

        Args:
            window: Seconds of results looked at, > 0.
            min_calls: Results needed in the window before it may open, >= 1.
            failure_ratio: Share of failures above which it opens, in [0, 1).
            min_authorizers: Distinct failing authorizers needed to open, >= 1.
            probe_interval: Seconds from opening to the first probe, > 0.
            max_probe_interval: Cap of the doubling interval between probes, >= probe_interval.
            on_change: Called with ``(old, new, now)`` on every change of state.
        """
        for name, value in (("window", window), ("probe_interval", probe_interval)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(max_probe_interval) and max_probe_interval >= probe_interval):
            raise ValueError("max_probe_interval must be finite and >= probe_interval")
        if not 0.0 <= failure_ratio < 1.0:
            raise ValueError(f"failure_ratio must be in [0, 1), got {failure_ratio!r}")
        if min_calls < 1 or min_authorizers < 1:
            raise ValueError("min_calls and min_authorizers must be >= 1")
        self._calls = SlidingCount(window, _BUCKETS)
        self._failures = SlidingCount(window, _BUCKETS)
        self._failed_keys = DistinctKeys(window)
        self._min_calls = min_calls
        self._failure_ratio = failure_ratio
        self._min_authorizers = min_authorizers
        self._probe_interval = probe_interval
        self._max_interval = max_probe_interval
        self._interval = probe_interval
        self._next_probe = 0.0
        self._opened_at = math.nan
        self._on_change = on_change
        self.state: CircuitState = "closed"
        """The current state."""

    def _move(self, new: CircuitState, now: float) -> None:
        old = self.state
        self.state = new
        if self._on_change is not None and old != new:
            self._on_change(old, new, now)

    @property
    def opened_at(self) -> float | None:
        """When the current outage began (the circuit opened), ``None`` while closed."""
        return None if self.state == "closed" else self._opened_at

    def allow(self, now: float) -> bool:
        """Whether a call may be sent at ``now``; a ``True`` while not closed is the probe."""
        if self.state == "closed":
            return True
        if now < self._next_probe:
            return False
        # This call is the probe; if it never reports, another goes after the interval.
        self._next_probe = now + self._interval
        self._move("half_open", now)
        return True

    def retry_after(self, now: float) -> float:
        """Seconds until the next probe may go (0.0 while closed)."""
        if self.state == "closed":
            return 0.0
        return max(0.0, self._next_probe - now)

    def on_success(self, now: float, count: int = 1) -> None:
        """``count`` answers proved the platform up at ``now``."""
        if self.state == "closed":
            self._calls.add(now, count)
            return
        self._calls.clear()
        self._failures.clear()
        self._failed_keys.clear()
        self._interval = self._probe_interval
        self._move("closed", now)

    def on_failure(self, app_id: str, now: float) -> None:
        """A call for ``app_id`` failed with a transient error at ``now``."""
        state = self.state
        if state == "half_open":
            # The probe (or a straggler sent before the outage) failed: wait longer.
            self._interval = min(self._interval * 2.0, self._max_interval)
            self._next_probe = now + self._interval
            self._move("open", now)
            return
        if state == "open":
            return  # stragglers sent before it opened say nothing new
        self._calls.add(now)
        self._failures.add(now)
        distinct = self._failed_keys.add(app_id, now)
        total = self._calls.total(now)
        if (
            total >= self._min_calls
            and self._failures.total(now) > self._failure_ratio * total
            and distinct >= self._min_authorizers
        ):
            self._opened_at = now
            self._interval = self._probe_interval
            self._next_probe = now + self._interval
            self._move("open", now)
