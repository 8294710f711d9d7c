"""The running count behind a :class:`~kuaishou_mp.retry_budget.RetryBudget`."""

from __future__ import annotations

from ._windows import SlidingCount

_BUCKETS = 10


class BudgetMeter:
    """First attempts and retries in the budget's sliding window; clock passed in.

    Wiring: :meth:`record_request` when a call's first attempt is sent, :meth:`try_withdraw`
    before each retry (after the policy decided the failure is retryable). Both are a few
    integer operations on a preallocated ring.
    """

    __slots__ = ("_ratio", "_refusing", "_requests", "_reserve", "_retries")

    def __init__(self, *, ratio: float, window: float, min_per_second: float) -> None:
        """Create the meter (settings already checked); :meth:`RetryBudget.build` is the usual
        way."""
        self._ratio = ratio
        self._reserve = min_per_second * window
        self._requests = SlidingCount(window, _BUCKETS)
        self._retries = SlidingCount(window, _BUCKETS)
        self._refusing = False

    def record_request(self, now: float, count: int = 1) -> None:
        """``count`` calls' first attempts were sent at ``now``."""
        self._requests.add(now, count)

    def available(self, now: float) -> float:
        """Retries the budget would still allow at ``now`` (may be fractional or negative)."""
        return self._ratio * self._requests.total(now) + self._reserve - self._retries.total(now)

    def try_withdraw(self, now: float) -> bool:
        """Take one retry from the budget at ``now``; ``False`` (and nothing taken) if spent."""
        if self.available(now) >= 1.0:
            self._retries.add(now)
            self._refusing = False
            return True
        self._refusing = True
        return False

    @property
    def refusing(self) -> bool:
        """Whether the last :meth:`try_withdraw` was refused: an episode of refusals is under
        way (the caller logs once when this turns ``True``)."""
        return self._refusing
