"""The component-wide rate learned from the platform's throttling: CUBIC, as a pure calculator.

The platform may limit all authorizers of a component together without publishing the
number. This calculator holds the rate the whole client should send at, in the manner of
botocore's adaptive retry mode (``retries/throttling.py`` and ``retries/adaptive.py``), itself
TCP CUBIC (RFC 8312) applied to requests per second:

* each sent call is counted over the platform's one-second window, because the rate that was
  throttled is the one *sent*, not the one allowed (and a smoothed meter lags by seconds behind
  a client that has just started or resumed); a smoothed measurement (0.5 s buckets,
  exponential smoothing 0.8) bounds the rate's growth;
* a throttle remembers the rate at which it happened as ``w_max`` (the rate sent, or, if that
  is less, the answers that got through in the platform's last one-second window: a throttle
  says that window is full, so what got through is its capacity; raised while the answers of
  calls that window admitted are still coming in) and sets the rate to ``beta`` (0.7) times it;
* except when the window measured a capacity that did not fall: a client sends unpaced until
  the platform first throttles, so its first throttle comes from a burst, not from a rate that
  was too high; and a curve probing beyond the capacity measured at the last decrease, whose
  window gets that capacity through again (:data:`SAME_LIMIT`), found the limit where it was.
  Neither is a rate to back off from: the rate stays at the capacity measured
  (:data:`MEASURED_BETA`, 0.99 of it), the curve at its flat top for ``K`` seconds before it
  probes again. A window that got less through says the capacity fell: ``beta`` applies;
* after a decrease, sending resumes when the window that was full has let its oldest answers
  go (:attr:`ComponentRate.resume_at`): until then every call would be throttled again, which
  is what a client that starts unlimited meets after its first burst;
* every success moves the rate along ``scale * (t - K)**3 + w_max``, where ``t`` is the time
  since the last decrease and ``K = cbrt(w_max * (1 - beta) / scale)`` is the time at which the
  curve is back at ``w_max``: fast at first, flat near the rate that failed, then probing
  beyond it;
* above ``w_max``, the rate never exceeds twice the measured send rate (an idle client does not
  build up an allowance beyond the capacity it measured); it never exceeds the hard cap
  (``RateLimit.global_qps``) and never falls below ``min_rate``.

A decrease counts once per platform window: throttles of calls sent less than ``holdoff``
(1 s, the platform's QPS window) after the last decrease are ignored. Calls in flight at the
old rate come back throttled, and so do calls sent at the new rate while the platform's window
still holds the old rate's calls; neither says the new rate is too high. Without the hold-off
the rate collapses to the floor in a second (x0.7 per round trip). TCP reduces once per
window of data for the same reason.

Every method takes ``now`` (monotonic seconds); nothing here reads a clock, sleeps or
allocates on the success path. The learned state is ten floats (:meth:`ComponentRate.state`),
so a shared store (Redis, with its own clock) can hold it; the window of answers that got
through is this process's own measurement and stays here.
"""

from __future__ import annotations

import math

from ._windows import SlidingCount

BETA = 0.7
"""Multiplicative decrease on a throttle (botocore's and CUBIC's ``beta``)."""
SCALE = 0.4
"""CUBIC's ``C``, in calls/s per s**3 (botocore's scale constant)."""
HOLDOFF = 1.0
"""Seconds after a decrease during which sent calls cannot cause another (the platform's window)."""
MIN_RATE = 0.5
"""The rate never falls below this (calls/s): a throttled client keeps making progress."""
SMOOTHING = 0.8
"""Weight of the newest bucket in the measured send rate."""
BUCKET = 0.5
"""Length in seconds of the buckets the send rate is measured in."""
WINDOW = 1.0
"""Seconds of the platform's rate window, over which the answers that got through are counted."""
SAME_LIMIT = 0.97
"""A window that got at least this share of the known limit through found that limit again."""
MEASURED_BETA = 0.99
"""The decrease when a full window measured the capacity and nothing says it fell: the rate
stays at that capacity (one percent below it), and the curve holds there before probing."""
_SLICES = 100  # of the window: what is counted covers 99% to 100% of it

_NEVER = -math.inf


class RateMeter:
    """A smoothed events-per-second measurement in fixed buckets (botocore's ``RateClocker``).

    Three floats; :meth:`tick` is a comparison and an addition except once per bucket.
    """

    __slots__ = ("count", "smoothed", "start")

    def __init__(self) -> None:
        self.start = _NEVER
        self.count = 0.0
        self.smoothed = 0.0

    def tick(self, now: float, count: int = 1) -> None:
        """Count ``count`` events at ``now``."""
        start = self.start
        if now < start + BUCKET:
            self.count += count
            return
        bucket = now - now % BUCKET
        if start != _NEVER:
            rate = self.count / (bucket - start)
            self.smoothed = SMOOTHING * rate + (1.0 - SMOOTHING) * self.smoothed
        self.start = bucket
        self.count = float(count)

    def rate(self, now: float) -> float:
        """The smoothed rate; before the first bucket closes, the open bucket's events over its
        elapsed time (at least one bucket)."""
        if self.smoothed > 0.0:
            return self.smoothed
        if self.start == _NEVER:
            return 0.0
        return self.count / max(now - self.start, BUCKET)


class ComponentRate:
    """The rate (calls/s) the whole client may send at, learned from throttles.

    Until the first throttle the rate is the cap (``math.inf`` without one): nothing is
    learned before the platform says something.

    Wiring: :meth:`on_send` when a call is sent (after the limiter admits it), :meth:`on_throttle`
    after a ``400002`` judged component-wide, :meth:`on_success` after any answer that is not a
    throttle; the global limiter paces at :attr:`rate`.
    """

    __slots__ = (
        "_beta",
        "_cap",
        "_holdoff",
        "_k",
        "_last_fail",
        "_min_rate",
        "_ok",
        "_scale",
        "_sent",
        "_sent_window",
        "_w_max",
        "_window",
        "rate",
        "resume_at",
    )

    def __init__(
        self,
        *,
        cap: float | None = None,
        beta: float = BETA,
        scale: float = SCALE,
        min_rate: float = MIN_RATE,
        holdoff: float = HOLDOFF,
    ) -> None:
        """Create the calculator.

        Args:
            cap: The hard limit (``RateLimit.global_qps``); ``None`` = none.
            beta: Factor applied on a throttle, in (0, 1).
            scale: CUBIC's growth constant, > 0.
            min_rate: Floor of the rate, > 0 (and at most ``cap``).
            holdoff: Seconds after a decrease during which sent calls cannot cause another,
                >= 0 (the platform's rate window).
        """
        if not 0.0 < beta < 1.0:
            raise ValueError(f"beta must be in (0, 1), got {beta!r}")
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        if cap is not None and not (cap > 0 and math.isfinite(cap)):
            raise ValueError(f"cap must be a finite number > 0 or None, got {cap!r}")
        if not (min_rate > 0 and math.isfinite(min_rate)):
            raise ValueError(f"min_rate must be a finite number > 0, got {min_rate!r}")
        if not (holdoff >= 0 and math.isfinite(holdoff)):
            raise ValueError(f"holdoff must be a finite number >= 0, got {holdoff!r}")
        self._holdoff = holdoff
        self._cap = math.inf if cap is None else float(cap)
        self._beta = beta
        self._scale = scale
        self._min_rate = min(min_rate, self._cap)
        self.rate: float = self._cap
        """The rate to pace the whole client at, calls/s (``math.inf`` = unlimited)."""
        self._w_max = 0.0
        self._k = 0.0
        self._last_fail = _NEVER
        self._sent = RateMeter()
        self._ok = RateMeter()
        self._window = SlidingCount(WINDOW, buckets=_SLICES)
        self._sent_window = SlidingCount(WINDOW, buckets=_SLICES)
        self.resume_at = _NEVER
        """When sending may resume after the last decrease (monotonic seconds): the time the
        full window has let its oldest answer go."""

    # -- measurement -----------------------------------------------------------------------

    def on_send(self, now: float, count: int = 1) -> None:
        """Record that ``count`` calls were sent at ``now``."""
        self._sent.tick(now, count)
        self._sent_window.add(now, count)

    def measured_rate(self, now: float) -> float:
        """The smoothed rate calls were sent at (calls/s)."""
        return self._sent.rate(now)

    def good_rate(self, now: float) -> float:
        """The smoothed rate of answers that were not throttles (calls/s)."""
        return self._ok.rate(now)

    def sent_in_window(self, now: float) -> int:
        """Calls sent in the last :data:`WINDOW` seconds."""
        return self._sent_window.total(now)

    def got_through(self, now: float) -> int:
        """Answers that were not throttles in the last :data:`WINDOW` seconds."""
        return self._window.total(now)

    # -- feedback --------------------------------------------------------------------------

    @property
    def throttled(self) -> bool:
        """Whether a throttle was ever taken into account (the rate is learned, not the cap)."""
        return self._last_fail != _NEVER

    @property
    def last_max(self) -> float:
        """The rate at the last throttle (CUBIC's ``w_max``); 0.0 before any."""
        return self._w_max

    @property
    def recovery_time(self) -> float:
        """Seconds after the last throttle at which the curve is back at :attr:`last_max` (K)."""
        return self._k

    def on_throttle(self, now: float, sent_at: float) -> bool:
        """A component-wide throttle answered a call sent at ``sent_at``: lower the rate.

        Returns:
            Whether the rate was lowered (``False`` for a call sent less than ``holdoff``
            after the last decrease).
        """
        window = self._window
        if sent_at < self._last_fail + self._holdoff:
            # Answers of calls the full window admitted are still arriving: the capacity it
            # measures grows until the last of them is in. The curve keeps the decrease it
            # started with (K grows as the cube root of w_max); the next answer moves the rate
            # along it.
            good = window.total(now)
            if good > self._w_max:
                self._k *= (good / self._w_max) ** (1.0 / 3.0)
                self._w_max = float(good)
            return False
        first = self._last_fail == _NEVER
        # Counted over the platform's window, as its limit is: a smoothed meter lags by
        # seconds behind a client that has just started (or just resumed).
        sent = float(self._sent_window.total(now)) or self.rate
        # The rate that failed is what was really sent, and never more than what was allowed.
        # When the window that refused it also let calls through, those are its capacity: the
        # curve is centred there and flattens out at the limit itself.
        failed_at = min(sent, self.rate)
        good = window.total(now)
        if 0 < good < failed_at:
            failed_at = float(good)
        if not math.isfinite(failed_at):  # nothing measured and no cap: start from the floor
            failed_at = self._min_rate / self._beta
        # A measured window that says nothing fell: an unpaced client's first burst (no rate
        # was too high, the burst was), or the curve probing beyond the limit measured at the
        # last decrease and finding that limit again. The capacity is known, so the rate
        # stays at it and the curve's flat top comes first (MEASURED_BETA); anything else is
        # a rate that was too high, and comes down by beta.
        found_again = self.rate > self._w_max and good >= SAME_LIMIT * self._w_max
        decrease = MEASURED_BETA if good > 0 and (first or found_again) else self._beta
        oldest = window.oldest(now)
        self.resume_at = now if oldest is None else max(now, oldest + WINDOW)
        self._w_max = failed_at
        self._last_fail = now
        # CUBIC's K: when the curve, started at decrease * w_max, is back at w_max.
        self._k = (failed_at * (1.0 - decrease) / self._scale) ** (1.0 / 3.0)
        self.rate = max(self._min_rate, min(failed_at * decrease, self._cap))
        return True

    def on_success(self, now: float, count: int = 1) -> None:
        """``count`` answers that were not throttles arrived at ``now``: move the rate along the
        curve."""
        self._ok.tick(now, count)
        self._window.add(now, count)
        last = self._last_fail
        if last == _NEVER:
            return
        d = now - last - self._k
        target = self._scale * d * d * d + self._w_max
        # Beyond the capacity measured, only a client that sends probes: one that was idle (or
        # held back until a full window had room) builds up no allowance above it.
        ceiling = 2.0 * self._sent.rate(now)
        if target > ceiling and target > self._w_max:
            target = ceiling if ceiling > self._w_max else self._w_max
        cap = self._cap
        if target > cap:
            target = cap
        floor = self._min_rate
        self.rate = target if target > floor else floor

    def curve(self, now: float) -> float:
        """The CUBIC curve at ``now`` without the caps (``inf`` before any throttle)."""
        if self._last_fail == _NEVER:
            return math.inf
        d = now - self._last_fail - self._k
        return self._scale * d * d * d + self._w_max

    # -- state for a shared store ------------------------------------------------------------

    def state(self) -> tuple[float, ...]:
        """The learned state as ten floats, in the order :meth:`restore` takes them.

        ``(rate, w_max, k, last_fail)`` and ``(start, count, smoothed)`` of the sent and of the
        good-answer meters; times are on the caller's clock (``-inf`` for "never").
        """
        sent, ok = self._sent, self._ok
        return (
            self.rate,
            self._w_max,
            self._k,
            self._last_fail,
            sent.start,
            sent.count,
            sent.smoothed,
            ok.start,
            ok.count,
            ok.smoothed,
        )

    def restore(self, state: tuple[float, ...]) -> None:
        """Take over a state produced by :meth:`state` (the cap and constants stay this one's)."""
        if len(state) != 10:
            raise ValueError(f"a ComponentRate state has 10 floats, got {len(state)}")
        rate, self._w_max, self._k, self._last_fail = state[:4]
        self.rate = min(rate, self._cap)
        sent, ok = self._sent, self._ok
        sent.start, sent.count, sent.smoothed = state[4:7]
        ok.start, ok.count, ok.smoothed = state[7:]
