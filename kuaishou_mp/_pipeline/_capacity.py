"""Client-wide capacity state: the learned component rate, the retry budget, the outage circuit.

One :class:`Capacity` per client, shared by every :meth:`~kuaishou_mp.Client.with_options`
copy and by nothing else (two clients never share a budget, a circuit or a rate). The pipeline
calls it at four points:

* :meth:`Capacity.check_open` before each attempt: an open circuit fails the call fast with
  :class:`~kuaishou_mp.PlatformUnavailableError` (one probe goes every few seconds);
* :meth:`Capacity.pace` after the limiter admitted the attempt: sends are spaced client-wide
  at the learned rate (infinite until the platform throttles across authorizers);
* :meth:`Capacity.answered` / :meth:`Capacity.failed` when the attempt ended;
* :class:`CapacityThrottle` (the default throttle feedback) after a ``400002``: component-wide
  throttling lowers the learned rate, an authorizer's own throttling penalises its limiter, and
  either way the call goes back through the limiter, spending no retry.

The callback slots (``on_circuit_change``, ``on_throttle``, ``on_rate_change``) are where
hooks attach; each is ``None`` (never called) unless set.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from .._budget_meter import BudgetMeter
from .._circuit import CircuitState, OutageCircuit
from .._component_rate import ComponentRate
from .._throttle_detector import ComponentThrottleDetector
from .._windows import SlidingCount
from ..errors import PlatformUnavailableError, RateLimitedError
from ..ratelimit import Limiter
from ..retry_budget import RetryBudget
from ._request import Request

__all__ = ["Capacity", "CapacityThrottle"]

logger = logging.getLogger("kuaishou_mp")

_HORIZON = 0.5
_MIN_SHARE = 0.1

CircuitCallback = Callable[[CircuitState, CircuitState], None]
ThrottleCallback = Callable[[Request, RateLimitedError, bool], None]
"""``(request, error, component_wide)`` after a throttle was handled."""
RateCallback = Callable[[float, float], None]
"""``(old_rate, new_rate)`` after the learned rate was lowered by a throttle."""


class Capacity:
    """What every copy of one client shares to live within the platform's capacity."""

    __slots__ = (
        "_budget_meter",
        "_next_send",
        "_sends",
        "_throttles",
        "circuit",
        "detector",
        "on_circuit_change",
        "on_rate_change",
        "on_throttle",
        "rate",
    )

    def __init__(self, *, cap: float | None = None) -> None:
        self.rate = ComponentRate(cap=cap)
        self.detector = ComponentThrottleDetector()
        # A 2 s window (not the circuit's 10 s default): at hundreds of calls per second the
        # failures of a sudden outage must outnumber only the last 2 s of successes, so the
        # circuit opens about a second in, before most in-flight calls spent their retries.
        self.circuit = OutageCircuit(window=2.0, on_change=self._circuit_moved)
        self._budget_meter: BudgetMeter | None = None
        self._next_send = -math.inf
        self._sends = SlidingCount(1.0)
        self._throttles = SlidingCount(1.0)
        self.on_circuit_change: CircuitCallback | None = None
        self.on_throttle: ThrottleCallback | None = None
        self.on_rate_change: RateCallback | None = None

    # -- retry budget --------------------------------------------------------------------------

    def meter(self, budget: RetryBudget) -> BudgetMeter:
        """The client's one budget meter (built from the first policy that asks for one)."""
        meter = self._budget_meter
        if meter is None:
            meter = self._budget_meter = budget.build()
        return meter

    def withdraw_retry(self, budget: RetryBudget) -> bool:
        """Take one retry from the budget; ``False`` when it is spent (logged once per episode)."""
        meter = self.meter(budget)
        was_refusing = meter.refusing
        if meter.try_withdraw(time.monotonic()):
            if was_refusing:
                logger.info("retry budget available again: retries resume")
            return True
        if not was_refusing:
            logger.warning("retry budget spent: failures surface without retries until it recovers")
        return False

    # -- circuit -------------------------------------------------------------------------------

    def _circuit_moved(self, old: CircuitState, new: CircuitState, now: float) -> None:
        if old == "closed" and new == "open":
            logger.warning("platform unavailable: outage circuit open, calls fail fast")
        elif new == "closed":
            logger.info("platform answering again: outage circuit closed")
        callback = self.on_circuit_change
        if callback is not None:
            callback(old, new)

    def check_open(self, req: Request) -> None:
        """Raise :class:`PlatformUnavailableError` if the circuit refuses ``req``'s attempt."""
        circuit = self.circuit
        if circuit.state == "closed":
            return
        now = time.monotonic()
        if not circuit.allow(now):
            raise PlatformUnavailableError(
                "the platform is unavailable (outage circuit open); not sent",
                endpoint=req.endpoint.name,
                app_id=req.app_id,
                retry_after=circuit.retry_after(now),
            )

    def answered(self, now: float, *, throttled: bool = False) -> None:
        """The platform answered (a result, a business error or a throttle)."""
        self.circuit.on_success(now)
        if not throttled:
            self.rate.on_success(now)

    def failed(self, app_id: str | None, now: float) -> None:
        """An attempt failed with a transient error (5xx, connection, timeout, server error)."""
        self.circuit.on_failure(app_id or "", now)

    # -- learned rate --------------------------------------------------------------------------

    async def pace(self, app_id: str) -> float:
        """Wait for the call's slot at the learned rate; return when it was sent (monotonic)."""
        while True:
            now = time.monotonic()
            rate = self.rate.rate
            if rate == math.inf:
                break
            slot = max(self._next_send, now)
            if slot - now <= _HORIZON:
                self._next_send = slot + 1.0 / rate
                if slot > now:
                    await asyncio.sleep(slot - now)
                    now = time.monotonic()
                break
            # Slots are handed out only a short way ahead: the rate may have recovered by
            # then, and a slot reserved at a low rate would keep the call waiting regardless.
            await asyncio.sleep(_HORIZON)
        self.rate.on_send(now)
        self.detector.on_send(app_id, now)
        self._sends.add(now)
        return now

    def throttled(self, app_id: str, sent_at: float) -> bool:
        """A ``400002`` for ``app_id``: lower the learned rate if it is component-wide.

        Returns whether the throttle was judged component-wide.
        """
        now = time.monotonic()
        self._throttles.add(now)
        if not self.detector.on_throttle(app_id, now):
            return False
        # Scattered throttles of single authorizers (a few percent of the calls) look
        # component-wide to the detector too; only a real share of the calls lowers the rate.
        if self._throttles.total(now) < _MIN_SHARE * self._sends.total(now):
            return False
        old = self.rate.rate
        if self.rate.on_throttle(now, sent_at):
            new = self.rate.rate
            # Calls already given later slots at the old rate keep them; new ones are spaced.
            logger.info("component-wide throttling: learned rate %.1f -> %.1f calls/s", old, new)
            callback = self.on_rate_change
            if callback is not None:
                callback(old, new)
        return True


class CapacityThrottle:
    """The default throttle feedback: learn, slow down, and send the call back through the
    limiter (no retry attempt spent; only the call's deadline bounds it).

    A policy that does not retry :class:`~kuaishou_mp.RateLimitedError` (``RetryPolicy.none()``
    among them) gets the throttle as an error, as before.
    """

    __slots__ = ("capacity", "limiter")

    def __init__(self, limiter: Limiter, capacity: Capacity) -> None:
        self.limiter = limiter
        self.capacity = capacity

    async def throttled(self, request: Request, error: RateLimitedError) -> bool:
        """Report the throttle; ``True`` re-admits the call."""
        app_id = request.app_id
        capacity = self.capacity
        component_wide = False
        if app_id is not None:
            component_wide = capacity.throttled(app_id, request.sent_at)
            if not component_wide:
                await self.limiter.penalize(app_id)
        callback = capacity.on_throttle
        if callback is not None:
            callback(request, error, component_wide)
        policy = request.policy
        if policy is None or policy.max_attempts == 1 or not policy.should_retry(error):
            return False
        deadline = request.deadline
        if deadline is not None and time.monotonic() >= deadline:
            return False
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "retrying %s app_id=%s after RateLimitedError code=%d attempt=%d requeued",
                request.endpoint.name,
                app_id or "-",
                error.code,
                request.stats.attempts,
            )
        return True
