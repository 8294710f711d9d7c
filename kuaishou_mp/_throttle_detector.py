"""Telling a component-wide throttle from an authorizer over its own limit.

A ``400002`` says "too fast" without saying for whom. An authorizer that made one call in the
last second cannot be over its own limit, so its throttle is evidence against the component's
limit ("lonely" throttle). Throttles of many distinct authorizers within a second are that
evidence too, even if each made several calls. One hot authorizer, however often it is
throttled, is never evidence: the per-authorizer limiter deals with it.

Pure: every method takes ``now``. Recording a send costs one dict update (per-window call
counts, kept for at most two windows); the deques only grow with throttles.
"""

from __future__ import annotations

import math

from ._windows import DistinctKeys

WINDOW = 1.0
"""Seconds over which calls and throttles are looked at (the platform's QPS window)."""
MIN_LONELY = 2
"""Lonely throttles of this many distinct authorizers within the window are component-wide."""
MIN_DISTINCT = 10
"""Throttles of this many distinct authorizers within the window are component-wide."""
MIN_SHARE = 0.1
"""Share of the window's calls that must be throttled before the learned rate comes down."""
MIN_SHARE_AT_LIMIT = 0.03
"""The share that will do once a limit is known and what gets through stays at it."""
AT_LIMIT = 1.02
"""What gets through is "at the limit" up to this factor of the limit known."""


def enough_to_lower(
    throttled: int, sent: int, *, got_through: int, known_limit: float | None
) -> bool:
    """Whether component-wide throttles are a large enough share of the window's calls to
    lower the learned rate.

    Scattered throttles of single authorizers (a few percent of the calls) look
    component-wide to the detector too, so only a real share (:data:`MIN_SHARE`) lowers the
    rate. Once a limit is known, a smaller share does while what gets through stays at that
    limit: scattered throttles do not stop more calls getting through, a limit does.

    Args:
        throttled: Throttled answers in the window.
        sent: Calls sent in the window.
        got_through: Answers in the window that were not throttles.
        known_limit: The capacity measured at the last decrease; ``None`` before any.
    """
    share = MIN_SHARE
    if known_limit is not None and got_through <= AT_LIMIT * known_limit:
        share = MIN_SHARE_AT_LIMIT
    return throttled >= share * sent


class ComponentThrottleDetector:
    """Decides, per throttled answer, whether the component-wide rate should come down.

    Wiring: :meth:`on_send` for every call sent (with its authorizer's app id), then for each
    ``400002`` answer :meth:`on_throttle`; when it returns ``True`` the component-wide rate is
    lowered (``ComponentRate.on_throttle``), otherwise only the authorizer's own limiter is.
    """

    __slots__ = (
        "_all",
        "_gen_start",
        "_lonely",
        "_min_distinct",
        "_min_lonely",
        "_new",
        "_old",
        "_window",
    )

    def __init__(
        self,
        *,
        window: float = WINDOW,
        min_lonely: int = MIN_LONELY,
        min_distinct: int = MIN_DISTINCT,
    ) -> None:
        """Create the detector.

        Args:
            window: Seconds of history, > 0.
            min_lonely: Distinct authorizers with a lonely throttle that make it component-wide.
            min_distinct: Distinct throttled authorizers that make it component-wide.
        """
        if not (window > 0 and math.isfinite(window)):
            raise ValueError(f"window must be a finite number > 0, got {window!r}")
        if min_lonely < 1 or min_distinct < 1:
            raise ValueError("min_lonely and min_distinct must be >= 1")
        self._window = window
        self._min_lonely = min_lonely
        self._min_distinct = min_distinct
        self._lonely = DistinctKeys(window)
        self._all = DistinctKeys(window)
        # Calls per authorizer in the current and the previous generation (each one window
        # long): together they cover at least the last full window.
        self._new: dict[str, int] = {}
        self._old: dict[str, int] = {}
        self._gen_start = -math.inf

    @property
    def window(self) -> float:
        """Seconds of history looked at."""
        return self._window

    def _rotate(self, now: float) -> None:
        elapsed = now - self._gen_start
        if elapsed >= self._window:
            self._old = self._new if elapsed < 2 * self._window else {}
            self._new = {}
            self._gen_start = now

    def on_send(self, app_id: str, now: float) -> None:
        """Record that a call for ``app_id`` was sent at ``now``."""
        if now - self._gen_start >= self._window:
            self._rotate(now)
        new = self._new
        new[app_id] = new.get(app_id, 0) + 1

    def calls(self, app_id: str, now: float) -> int:
        """Calls sent for ``app_id`` in the last one to two windows."""
        self._rotate(now)
        return self._new.get(app_id, 0) + self._old.get(app_id, 0)

    def on_throttle(self, app_id: str, now: float) -> bool:
        """A ``400002`` answered a call for ``app_id``: is the throttle component-wide?"""
        distinct = self._all.add(app_id, now)
        if self.calls(app_id, now) <= 1:
            lonely = self._lonely.add(app_id, now)
        else:
            lonely = self._lonely.count(now)
        return lonely >= self._min_lonely or distinct >= self._min_distinct
