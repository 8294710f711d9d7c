"""Client-wide capacity state: the learned component rate, the retry budget, the outage circuit.

One :class:`Capacity` per client, shared by every :meth:`~kuaishou_mp.Client.with_options`
copy and by nothing else (two clients never share a budget, a circuit or a rate). The pipeline
calls it at four points:

* :meth:`Capacity.admit` before each attempt while the circuit is not closed: an open circuit
  fails the call fast with :class:`~kuaishou_mp.PlatformUnavailableError` (one probe goes every
  few seconds), or holds it if it is an item of a bulk run that waits out outages;
* :meth:`Capacity.try_pace` (or, when the slot is later, :meth:`Capacity.pace`) after the
  limiter admitted the attempt: sends are spaced client-wide at the learned rate (infinite
  until the platform throttles across authorizers), or, with a limiter that shares one
  (``RedisLimiter``), at the rate every process shares;
* :meth:`Capacity.answered` / :meth:`Capacity.failed` when the attempt ended;
* :class:`CapacityThrottle` (the default throttle feedback) after a ``400002``: component-wide
  throttling lowers the learned rate, an authorizer's own throttling penalises its limiter, and
  either way the call goes back through the limiter, spending no retry.

Hooks hear the circuit through :meth:`Capacity.watch` (every observer of the client and of its
``with_options`` copies, held weakly, so a dropped copy stops listening) and read the learned
rate through :meth:`Capacity.learned_rate`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from typing import Protocol

from .._budget_meter import BudgetMeter
from .._circuit import CircuitState, OutageCircuit
from .._component_rate import ComponentRate
from .._outage_wait import wait_for_circuit
from .._throttle_detector import ComponentThrottleDetector, enough_to_lower
from .._windows import SlidingCount
from ..errors import PlatformUnavailableError, RateLimitedError
from ..ratelimit import Limiter
from ..retry_budget import RetryBudget
from ._request import Request

__all__ = ["Capacity", "CapacityThrottle"]

logger = logging.getLogger("kuaishou_mp")

_HORIZON = 0.5
# Per-call counts are batched over slices this long: the finest bucket of any window they go
# to (the learned rate's 1 s window in 100 slices), so a batch lands where its calls would.
_SLICE = 0.01


class CircuitWatcher(Protocol):
    """What hears the outage circuit move (the observer of a client with hooks)."""

    def circuit_changed(self, old: CircuitState, new: CircuitState) -> None:
        """The circuit moved from ``old`` to ``new``."""


class SharedLearnedRate(Protocol):
    """A learned component-wide rate kept outside the process (``RedisLimiter``'s)."""

    async def pace(self, got_through: int = 0) -> tuple[float, float | None] | None:
        """Take a send slot, reporting the answers that got through since the last one:
        seconds to wait and the shared rate; ``None`` if unreachable."""

    async def report(self, got_through: int) -> None:
        """Report answers that got through without taking a slot (a client that closes)."""

    async def throttled(self, resume_in: float, got_through: int = 0) -> float | None:
        """Report a component-wide throttle and the answers that got through since the last
        report; the shared rate after it (``None``: unreachable)."""


class Capacity:
    """What every copy of one client shares to live within the platform's capacity."""

    __slots__ = (
        "_answers",
        "_budget_meter",
        "_next_send",
        "_ok_unshared",
        "_oks",
        "_report",
        "_requests",
        "_sends",
        "_shared",
        "_shared_rate",
        "_slice_at",
        "_slice_end",
        "_throttles",
        "_watchers",
        "circuit",
        "detector",
        "rate",
    )

    def __init__(
        self, *, cap: float | None = None, shared: SharedLearnedRate | None = None
    ) -> None:
        # With a shared rate, every process paces against it; this process's calculator
        # still judges its own throttles and measures what got through its window, and takes
        # over the pacing whenever the shared store does not answer.
        self._shared = shared
        self._shared_rate: float | None = None
        self._report: float | None = None
        self._ok_unshared = 0
        self.rate = ComponentRate(cap=cap)
        self.detector = ComponentThrottleDetector()
        # A 2 s window (not the circuit's 10 s default): at hundreds of calls per second the
        # failures of a sudden outage must outnumber only the last 2 s of successes, so the
        # circuit opens about a second in, before most in-flight calls spent their retries.
        self.circuit = OutageCircuit(window=2.0, on_change=self._circuit_moved)
        self._budget_meter: BudgetMeter | None = None
        self._next_send = -math.inf
        self._throttles = SlidingCount(1.0)
        self._watchers: weakref.WeakSet[CircuitWatcher] = weakref.WeakSet()
        # The slice whose counts are pending (see _batching); none while _slice_end is -inf.
        self._slice_at = self._slice_end = -math.inf
        self._sends = self._answers = self._oks = self._requests = 0

    # -- per-call counts -----------------------------------------------------------------------

    def _batching(self, now: float) -> bool:
        """Whether an event at ``now`` may be counted in a pending batch.

        While nothing is learned and the circuit is closed, the calculators only count calls
        (nothing moves per call), so the counts of one slice are handed over together: the
        first event of a slice starts it, the first one past it (or any reading) flushes it.
        That keeps the bookkeeping of a call to a comparison and an addition per count.
        """
        self.settle()
        if self.rate.throttled or self.circuit.state != "closed":
            return False
        self._slice_at = now
        self._slice_end = (now // _SLICE + 1.0) * _SLICE
        return True

    def settle(self) -> None:
        """Hand the pending per-call counts to the calculators. Every reading of them here
        settles first; so must anything else that reads :attr:`rate`, :attr:`circuit` or the
        budget meter directly."""
        if self._slice_end == -math.inf:
            return
        at = self._slice_at
        self._slice_at = self._slice_end = -math.inf
        sends, answers, oks, requests = self._sends, self._answers, self._oks, self._requests
        self._sends = self._answers = self._oks = self._requests = 0
        if sends:
            self.rate.on_send(at, sends)
        if oks:
            self.rate.on_success(at, oks)
        if answers:
            self.circuit.on_success(at, answers)
        if requests:
            assert self._budget_meter is not None  # requests are counted only with a meter
            self._budget_meter.record_request(at, requests)

    def watch(self, watcher: CircuitWatcher) -> None:
        """Tell ``watcher`` of every circuit change, for as long as it lives."""
        self._watchers.add(watcher)

    def learned_rate(self) -> float | None:
        """The learned component-wide rate (calls/s); ``None`` while nothing was learned."""
        if self._shared_rate is not None:
            return self._shared_rate
        rate = self.rate.rate
        return None if rate == math.inf else rate

    # -- retry budget --------------------------------------------------------------------------

    def meter(self, budget: RetryBudget) -> BudgetMeter:
        """The client's one budget meter (built from the first policy that asks for one), with
        every first attempt counted."""
        meter = self._budget_meter
        if meter is None:
            meter = self._budget_meter = budget.build()
        self.settle()
        return meter

    def first_attempt(self, budget: RetryBudget, now: float) -> None:
        """A call under ``budget`` makes its first attempt at ``now``."""
        if self._budget_meter is not None and (now < self._slice_end or self._batching(now)):
            self._requests += 1
        else:
            self.meter(budget).record_request(now)

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
        for watcher in list(self._watchers):
            watcher.circuit_changed(old, new)

    async def admit(self, req: Request) -> None:
        """Return once the circuit lets ``req``'s attempt go; else raise
        :class:`PlatformUnavailableError` (an item of a waiting bulk run waits instead)."""

        def refusal(now: float) -> PlatformUnavailableError:
            return PlatformUnavailableError(
                "the platform is unavailable (outage circuit open); not sent",
                endpoint=req.endpoint.name,
                app_id=req.app_id,
                retry_after=self.circuit.retry_after(now),
            )

        await wait_for_circuit(self.circuit, req.deadline, refusal)

    def answered(self, now: float, *, throttled: bool = False) -> None:
        """The platform answered (a result, a business error or a throttle)."""
        if not throttled:
            self._ok_unshared += 1
        if now < self._slice_end or self._batching(now):
            self._answers += 1
            if not throttled:
                self._oks += 1
            return
        self.circuit.on_success(now)
        if not throttled:
            self.rate.on_success(now)

    def failed(self, app_id: str | None, now: float) -> None:
        """An attempt failed with a transient error (5xx, connection, timeout, server error)."""
        self.settle()
        self.circuit.on_failure(app_id or "", now)

    # -- learned rate --------------------------------------------------------------------------

    def try_pace(self, app_id: str) -> float | None:
        """Take the call's slot if it is due now and return when it was sent (monotonic);
        ``None`` if the call must await :meth:`pace` (a later slot, or a shared rate).

        The common case (nothing learned yet, or a slot already due) costs no coroutine.
        """
        if self._shared is not None:
            return None
        return self._due_slot(app_id, time.monotonic())

    def _due_slot(self, app_id: str, now: float) -> float | None:
        """Take the slot at ``now`` if it is due (or nothing is learned); else ``None``."""
        rate = self.rate.rate
        if rate != math.inf:
            if self._next_send > now:
                return None
            self._next_send = now + 1.0 / rate
        return self._sent(app_id, now)

    async def pace(self, app_id: str) -> float:
        """Wait for the call's slot at the learned rate; return when it was sent (monotonic)."""
        shared = self._shared
        answer = None
        if shared is not None:
            ok, self._ok_unshared = self._ok_unshared, 0
            answer = await shared.pace(ok)
            if answer is None:  # unreachable: this process's own learned rate applies
                self._shared_rate = None
        if answer is not None:
            wait, self._shared_rate = answer
            if wait > 0:
                await asyncio.sleep(wait)
            return self._sent(app_id, time.monotonic())
        while True:
            now = time.monotonic()
            sent = self._due_slot(app_id, now)
            if sent is not None:
                return sent
            slot = self._next_send  # later than now, at a finite rate
            if slot - now <= _HORIZON:
                self._next_send = slot + 1.0 / self.rate.rate
                await asyncio.sleep(slot - now)
                return self._sent(app_id, time.monotonic())
            # Slots are handed out only a short way ahead: the rate may have recovered by
            # then, and a slot reserved at a low rate would keep the call waiting regardless.
            await asyncio.sleep(_HORIZON)

    def _sent(self, app_id: str, now: float) -> float:
        if now < self._slice_end or self._batching(now):
            self._sends += 1
        else:
            self.rate.on_send(now)
        self.detector.on_send(app_id, now)
        return now

    async def flush(self) -> None:
        """Report this process's answers not yet told to the shared rate (a client that closes
        sends no more, and no pace would carry them)."""
        if self._shared is not None:
            ok, self._ok_unshared = self._ok_unshared, 0
            await self._shared.report(ok)

    async def share_throttle(self) -> None:
        """Tell the shared rate of the component-wide throttle :meth:`throttled` just judged
        large enough to lower the rate (a no-op without a shared rate or such a throttle)."""
        report, self._report = self._report, None
        if report is not None and self._shared is not None:
            ok, self._ok_unshared = self._ok_unshared, 0
            rate = await self._shared.throttled(report, ok)
            if rate is not None:
                self._shared_rate = rate

    def throttled(self, app_id: str, sent_at: float) -> bool:
        """A ``400002`` for ``app_id``: lower the learned rate if it is component-wide.

        Returns whether the throttle is the component's rather than the authorizer's own:
        judged component-wide, or lonely (an authorizer that made one call in the last second
        cannot be over its own limit, and slowing it down would only delay its retry).
        """
        now = time.monotonic()
        self.settle()
        self._throttles.add(now)
        detector = self.detector
        if not detector.on_throttle(app_id, now):
            return detector.calls(app_id, now) <= 1
        learned = self.rate
        if not enough_to_lower(
            self._throttles.total(now),
            learned.sent_in_window(now),
            got_through=learned.got_through(now),
            known_limit=learned.last_max if learned.throttled else None,
        ):
            # Too few to lower the rate: scattered throttles of authorizers over their own
            # limits look component-wide too, and those authorizers are slowed down.
            return detector.calls(app_id, now) <= 1
        if self._shared is not None:
            self._report = 0.0
        old = learned.rate
        if learned.on_throttle(now, sent_at):
            if self._report is not None:
                self._report = learned.resume_at - now
            new = learned.rate
            # Nothing goes until the full window has room again; calls already given later
            # slots at the old rate keep them, and new ones are spaced at the new rate.
            self._next_send = max(self._next_send, learned.resume_at)
            logger.info("component-wide throttling: learned rate %.1f -> %.1f calls/s", old, new)
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
        if app_id is not None:
            if capacity.throttled(app_id, request.sent_at):
                await capacity.share_throttle()
            else:  # the authorizer's own limit
                await self.limiter.penalize(app_id)
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
