"""Client-side rate limiting: keep every authorizer, and optionally the whole client, under a rate.

The platform publishes no QPS numbers and answers result 400002 when it throttles, so the
client paces itself. :class:`RateLimit` is the configuration, :meth:`RateLimit.build` makes the
in-process :class:`InProcessLimiter`, and anything implementing the small :class:`Limiter`
protocol (for example a Redis-backed limiter shared by several processes) can take its place.

Algorithm: GCRA ("virtual scheduling"). Each authorizer keeps a theoretical arrival time
``TAT``; with emission interval ``T = 1 / rate`` and tolerance ``tau = (burst - 1) * T`` a call
may go at ``now`` when ``now >= TAT - tau``, and then ``TAT = max(TAT, now) + T``. The global
limit is a second GCRA shared by all keys, taken after the per-key one.

Exactness guarantee: for every key, any half-open window of one second holds fewer than
``rate + burst`` admissions (so with ``burst == 1`` at most ``ceil(rate)``: calls are at least
``1 / rate`` apart); the same holds for all keys together against the global limit. Proof:
every admission at time ``a`` needs ``a >= TAT - tau`` and raises ``TAT`` to at least ``a + T``,
and nothing lowers ``TAT`` except the exact undo of a reservation nobody queued behind; so
``a[j+k] - a[j] >= (k - burst + 1) * T`` and ``n`` admissions less than 1 s apart give
``(n - burst) * T < 1``. Adaptive slow-downs only lengthen intervals, so the bound always holds
for the configured rate (up to floating-point rounding).

Per key, waiters form a FIFO queue and the one at its head is admitted at the time it really
goes (after any wait for the global limit). Reserving per-key slots at arrival would let a
global-limit delay bunch a key's calls together; committing at the real admission keeps the
per-key bound exact for the calls the platform actually sees.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import attrs

from ._rate_params import rate_params
from ._validate import field, integer, number

__all__ = ["InProcessLimiter", "Limiter", "RateLimit"]

_MIN_HIGH_WATER = 1024


@runtime_checkable
class Limiter(Protocol):
    """What the client needs from a rate limiter; keys are authorizer app ids, never tokens."""

    async def acquire(self, key: str) -> None:
        """Wait until a call for ``key`` may go.

        Never fails for being limited: it waits instead. Waiters for one key are admitted in
        the order they called.

        Args:
            key: The authorizer's app id.

        Raises:
            asyncio.CancelledError: The waiting task was cancelled; it is propagated promptly
                and leaves no state that would admit more calls than the limit.
        """
        ...

    async def penalize(self, key: str) -> None:
        """Report that the platform answered "rate limited" (400002) for ``key``: slow it down.

        Args:
            key: The authorizer's app id.
        """
        ...

    async def aclose(self) -> None:
        """Release resources (connections, ...) held by the limiter."""
        ...


_positive_rate = field("RateLimit", number, none_ok=True)
_burst = field("RateLimit", integer)


@attrs.frozen
class RateLimit:
    """How fast the client may call the platform; :meth:`build` makes the limiter.

    The platform publishes no rate limits, so the defaults are a conservative guess that the
    adaptive mode corrects from the platform's own 400002 answers.

    Attributes:
        per_authorizer_qps: Calls per second for each authorizer (app id); ``None`` disables
            per-authorizer limiting. Default 5.0: managing one mini-program (read its info,
            set its domains) takes a handful of calls, so 5/s costs a single authorizer almost
            nothing, while thousands of authorizers still proceed in parallel; it stays well
            below the per-app limits such platforms usually enforce, and ``adaptive`` slows a
            key further if the platform disagrees.
        burst: Calls for one authorizer that may go back to back before pacing starts.
            Default 1: evenly spaced calls, the shape least likely to trip a throttle.
        global_qps: Calls per second for the whole client (all authorizers together);
            ``None`` (default) means unlimited.
        global_burst: Calls that may go back to back against ``global_qps``. Default 1.
        adaptive: Slow an authorizer down when :meth:`InProcessLimiter.penalize` reports a
            throttled call, and speed it back up after a quiet period. Default ``True``.
            Needs ``per_authorizer_qps``; without it penalties are ignored.
        slow_factor: On each penalty the authorizer's rate is multiplied by this, in (0, 1).
            Default 0.5: halving (as TCP does) finds an unknown limit in a few steps.
            Penalties less than one current interval after the previous one count once,
            since they come from calls that were already in flight.
        min_factor: Floor of the rate factor, in (0, 1]. Default 0.05 (a twentieth of the
            configured rate, 0.25/s with the defaults): a throttled key keeps making progress.
        recovery_after: Seconds without a penalty before the rate starts to recover, and the
            length of each further recovery step. Default 2.0: longer than a one-second
            throttling window plus the calls still in flight when it closed.
        recovery_step: Each quiet ``recovery_after`` interval multiplies the factor by this
            (> 1), up to 1.0. Default 1.25: back from one halving in four steps (8 s) and
            from the floor in fourteen (28 s), gently enough not to oscillate.

    Raises:
        InvalidInputError: A rate is not a finite number > 0, a burst is not an int >= 1, or
            an adaptive knob is outside its range (also a ``ValueError``).
    """

    per_authorizer_qps: float | None = attrs.field(default=5.0, validator=_positive_rate)
    burst: int = attrs.field(default=1, validator=_burst)
    global_qps: float | None = attrs.field(default=None, validator=_positive_rate)
    global_burst: int = attrs.field(default=1, validator=_burst)
    adaptive: bool = True
    slow_factor: float = attrs.field(default=0.5, validator=field("RateLimit", number, high=1.0))
    min_factor: float = attrs.field(
        default=0.05, validator=field("RateLimit", number, high=1.0, high_ok=True)
    )
    recovery_after: float = attrs.field(default=2.0, validator=field("RateLimit", number))
    recovery_step: float = attrs.field(default=1.25, validator=field("RateLimit", number, low=1.0))

    def build(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> InProcessLimiter:
        """Make an in-process limiter enforcing this configuration.

        Args:
            clock: Monotonic clock in seconds (tests pass a fake one).
            sleep: Coroutine function sleeping for the given seconds on that clock.

        Returns:
            A new :class:`InProcessLimiter`.
        """
        return InProcessLimiter(self, clock=clock, sleep=sleep)


def _state(keys: dict[str, _Key | float], key: str, idle_tat: float) -> _Key:
    """The key's full state, made from its bare arrival time (or ``idle_tat``) if need be."""
    st = keys.get(key)
    if isinstance(st, _Key):
        return st
    full = keys[key] = _Key(idle_tat if st is None else st)
    return full


class _Key:
    """Per-authorizer state once a key has waiters or a penalty.

    Most keys never need more than their theoretical arrival time, and are stored as that bare
    float: no object to build on every new authorizer, and nothing for the garbage collector
    to track across a million of them. A key without any entry behaves exactly like a key idle
    since forever.
    """

    __slots__ = ("low", "penalized_at", "queue", "tat")

    def __init__(self, tat: float) -> None:
        self.tat = tat
        self.low = 1.0  # rate factor right after the last penalty
        self.penalized_at: float | None = None
        # Waiters in arrival order; queue[0] is the one being admitted. None when nobody waits.
        self.queue: deque[asyncio.Future[None]] | None = None


class InProcessLimiter:
    """The :class:`Limiter` for one process: GCRA per authorizer, plus an optional global GCRA.

    The uncontended path neither suspends nor creates tasks. Memory stays bounded: state of
    keys that are idle (and not still slowed down by a penalty) is dropped, amortised O(1).
    """

    def __init__(
        self,
        rate_limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Create the limiter; :meth:`RateLimit.build` is the usual way.

        Args:
            rate_limit: The configuration.
            clock: Monotonic clock in seconds.
            sleep: Coroutine function sleeping for the given seconds on that clock.
        """
        self._clock = clock
        self._sleep = sleep
        p = rate_params(rate_limit)
        self._keys: dict[str, _Key | float] | None = None if p.rate is None else {}
        self._rate = p.rate or 0.0
        # Copied to attributes: the hot path reads them on every call.
        self._interval = p.interval
        self._tau = p.tau
        self._adaptive = p.adaptive
        self._slow = p.slow_factor
        self._floor = p.min_factor
        self._recovery_after = p.recovery_after
        self._step = p.recovery_step
        self._forget_after = p.forget_after
        self._high_water = _MIN_HIGH_WATER
        self._g_interval = p.global_interval
        self._g_tau = p.global_tau
        self._g_tat = -math.inf

    def __len__(self) -> int:
        """Number of authorizers currently holding state (0 without per-authorizer limits)."""
        return 0 if self._keys is None else len(self._keys)

    async def current_rate(self, key: str) -> float | None:
        """The rate ``key`` is currently held to, after adaptive slow-down and recovery.

        A coroutine, as :meth:`kuaishou_mp.redis.RedisLimiter.current_rate` is (which must
        ask Redis), so code reading the rate works with either limiter; it never suspends.

        Args:
            key: The authorizer's app id.

        Returns:
            Calls per second, or ``None`` when per-authorizer limiting is disabled.
        """
        if self._keys is None:
            return None
        st = self._keys.get(key)
        if not isinstance(st, _Key):
            return self._rate
        return self._rate * self._factor(st, self._clock())

    async def acquire(self, key: str) -> None:
        """Wait until a call for ``key`` may go, first per authorizer, then globally.

        Returns without suspending when no wait is needed. Waiters for one key are admitted
        in arrival order.

        Args:
            key: The authorizer's app id (never a token: keys are kept in memory).

        Raises:
            asyncio.CancelledError: The task was cancelled while waiting; no slot is kept.
        """
        if self.try_acquire(key):
            return
        keys = self._keys
        if keys is None:
            await self._take_global()
        else:
            await self._wait_in_line(keys, key)

    def try_acquire(self, key: str) -> bool:
        """Take a slot for ``key`` if one is free right now; never waits.

        The client's hot path calls this before falling back to :meth:`acquire`, which saves
        a coroutine on every call that needs no wait.

        Args:
            key: The authorizer's app id.

        Returns:
            ``True`` if the call may go now (the slot is taken); ``False`` if it must wait,
            with nothing taken: then ``await acquire(key)`` queues it in arrival order.
        """
        # Hot path: conditional expressions instead of max() and no helper calls, on purpose.
        now = self._clock()
        g_tat = self._g_tat
        if g_tat - self._g_tau > now:
            return False
        keys = self._keys
        if keys is None:
            self._g_tat = (g_tat if g_tat > now else now) + self._g_interval
            return True
        st = keys.get(key)
        if st is None:
            keys[key] = now + self._interval
            self._g_tat = (g_tat if g_tat > now else now) + self._g_interval
            if len(keys) > self._high_water:
                self._sweep(keys, now)
            return True
        if not isinstance(st, _Key):  # a bare arrival time
            if st - self._tau > now:
                return False
            keys[key] = (st if st > now else now) + self._interval
            self._g_tat = (g_tat if g_tat > now else now) + self._g_interval
            return True
        tat = st.tat
        if st.queue is None and tat - self._tau <= now:
            interval = self._interval if st.penalized_at is None else self._slowed(st, now)
            st.tat = (tat if tat > now else now) + interval
            self._g_tat = (g_tat if g_tat > now else now) + self._g_interval
            return True
        return False

    async def penalize(self, key: str) -> None:
        """Slow ``key`` down after the platform answered "rate limited" (400002) for it.

        Multiplies the key's rate by ``slow_factor`` (not below ``min_factor``) and pushes its
        next call at least one new interval away. Penalties arriving within one current
        interval of the previous one are ignored: they come from calls already in flight. A
        no-op when ``adaptive`` is off or per-authorizer limiting is disabled.

        Args:
            key: The authorizer's app id.
        """
        keys = self._keys
        if keys is None or not self._adaptive:
            return
        now = self._clock()
        st = _state(keys, key, now)
        factor = self._factor(st, now)
        if st.penalized_at is not None and now - st.penalized_at < self._interval / factor:
            return
        factor = max(factor * self._slow, self._floor)
        st.low = factor
        st.penalized_at = now
        st.tat = max(st.tat, now + self._tau) + self._interval / factor
        if len(keys) > self._high_water:
            self._sweep(keys, now)

    async def aclose(self) -> None:
        """Nothing to release in process; present for the :class:`Limiter` protocol."""

    def _factor(self, st: _Key, now: float) -> float:
        at = st.penalized_at
        if at is None:
            return 1.0
        quiet = now - at
        if quiet >= self._forget_after:
            st.penalized_at = None
            return 1.0
        return min(1.0, st.low * self._step ** int(quiet // self._recovery_after))

    def _slowed(self, st: _Key, now: float) -> float:
        return self._interval / self._factor(st, now)

    async def _wait_in_line(self, keys: dict[str, _Key | float], key: str) -> None:
        st = _state(keys, key, -math.inf)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        q = st.queue
        if q is None:
            q = st.queue = deque()
        q.append(fut)
        try:
            if len(q) > 1:
                await fut  # the waiter ahead hands over when it leaves
            while (wait := st.tat - self._tau - self._clock()) > 0:
                # Re-checked after waking: a penalty may have pushed TAT meanwhile.
                await self._sleep(wait)
            await self._take_global()
            now = self._clock()
            st.tat = max(st.tat, now) + self._slowed(st, now)
        finally:
            if q and q[0] is fut:
                q.popleft()
                while q and q[0].cancelled():
                    q.popleft()
                if q:
                    q[0].set_result(None)
                else:
                    st.queue = None
            # Otherwise our future was cancelled while waiting; whoever leaves next skips it.

    async def _take_global(self) -> None:
        now = self._clock()
        prev = self._g_tat
        slot = prev - self._g_tau
        self._g_tat = end = max(prev, now) + self._g_interval
        if slot <= now:
            return
        try:
            while (wait := slot - self._clock()) > 0:
                await self._sleep(wait)
        except BaseException:
            if self._g_tat == end:  # nobody reserved after us: the slot can be given back
                self._g_tat = prev
            raise

    def _sweep(self, keys: dict[str, _Key | float], now: float) -> None:
        forget = self._forget_after
        # Rebuilding (rather than deleting) also gives the dict's memory back.
        kept = {
            k: st
            for k, st in keys.items()
            if (
                st > now
                if not isinstance(st, _Key)
                else st.queue is not None
                or st.tat > now
                or (st.penalized_at is not None and now - st.penalized_at < forget)
            )
        }
        self._keys = kept
        self._high_water = max(_MIN_HIGH_WATER, 2 * len(kept))
