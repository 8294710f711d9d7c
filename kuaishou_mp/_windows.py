"""Sliding-window counters for the capacity calculators, on a clock the caller passes in.

Both hold a fixed amount of state: recording a call is a few integer operations on a
preallocated ring, so the success path of a call allocates nothing.
"""

from __future__ import annotations

import math
from collections import deque


class SlidingCount:
    """How many events fell in the last ``window`` seconds, in ``buckets`` equal slices.

    The count covers between ``window - window / buckets`` and ``window`` seconds of history:
    events older than one full window are never counted.
    """

    __slots__ = ("_counts", "_head", "_total", "_width")

    def __init__(self, window: float, buckets: int = 10) -> None:
        if not (window > 0 and math.isfinite(window)):
            raise ValueError(f"window must be a finite number > 0, got {window!r}")
        if buckets < 1:
            raise ValueError(f"buckets must be >= 1, got {buckets!r}")
        self._width = window / buckets
        self._counts = [0] * buckets
        self._head = -1  # absolute index of the newest bucket; -1 = nothing seen yet
        self._total = 0

    def _advance(self, now: float) -> int:
        index = int(now // self._width)
        head = self._head
        if index > head:
            counts = self._counts
            size = len(counts)
            if head < 0 or index - head >= size:
                for i in range(size):
                    counts[i] = 0
                self._total = 0
            else:
                for i in range(head + 1, index + 1):
                    slot = i % size
                    self._total -= counts[slot]
                    counts[slot] = 0
            self._head = index
        return index

    def add(self, now: float, amount: int = 1) -> None:
        """Record ``amount`` events at ``now`` (times never go backwards by more than a bucket)."""
        # Every call of every request records here, mostly within the newest bucket: that case
        # costs no call to _advance. A time slightly in the past (clock read before a
        # suspension) lands in the newest bucket too.
        if now // self._width > self._head:
            self._advance(now)
        counts = self._counts
        counts[self._head % len(counts)] += amount
        self._total += amount

    def clear(self) -> None:
        """Forget every event."""
        self._head = -1
        self._total = 0

    def total(self, now: float) -> int:
        """Events in the window ending at ``now``."""
        self._advance(now)
        return self._total

    def oldest(self, now: float) -> float | None:
        """Start of the oldest slice of the window ending at ``now`` that holds an event.

        At most one slice width before the oldest event itself; ``None`` when the window is
        empty.
        """
        head = self._advance(now)
        if self._total == 0:
            return None
        counts = self._counts
        size = len(counts)
        for index in range(head - size + 1, head + 1):
            if counts[index % size]:
                return index * self._width
        return None  # pragma: no cover - a positive total has a non-empty slice


class DistinctKeys:
    """Which keys had an event in the last ``window`` seconds: distinct count in O(1) amortised.

    Meant for the rare path (throttles, failures): each event costs one deque entry.
    """

    __slots__ = ("_events", "_last", "_window")

    def __init__(self, window: float) -> None:
        if not (window > 0 and math.isfinite(window)):
            raise ValueError(f"window must be a finite number > 0, got {window!r}")
        self._window = window
        self._events: deque[tuple[float, str]] = deque()
        self._last: dict[str, float] = {}

    def _expire(self, now: float) -> None:
        horizon = now - self._window
        events, last = self._events, self._last
        while events and events[0][0] <= horizon:
            t, key = events.popleft()
            if last.get(key) == t:
                del last[key]

    def add(self, key: str, now: float) -> int:
        """Record an event for ``key`` at ``now``; return the distinct keys now in the window."""
        self._expire(now)
        self._events.append((now, key))
        self._last[key] = now
        return len(self._last)

    @property
    def window(self) -> float:
        """Seconds of history kept."""
        return self._window

    def count(self, now: float) -> int:
        """Distinct keys with an event in the window ending at ``now``."""
        self._expire(now)
        return len(self._last)

    def clear(self) -> None:
        """Forget every event."""
        self._events.clear()
        self._last.clear()
