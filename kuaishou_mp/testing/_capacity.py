"""The fake platform's component-wide rate limit: all authorizers together, one window."""

from __future__ import annotations

import collections


class ComponentWindow:
    """Admission times of the last window, across every authorizer of the component."""

    __slots__ = ("_admitted",)

    def __init__(self) -> None:
        self._admitted: collections.deque[float] = collections.deque()

    def full(self, limit: float, window: float, now: float) -> bool:
        """Whether ``limit`` requests were already admitted in the ``window`` before ``now``."""
        admitted = self._admitted
        horizon = now - window
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        return len(admitted) >= limit

    def admit(self, now: float) -> None:
        """Count a request admitted at ``now``."""
        self._admitted.append(now)
