"""Retry budgets: retries client-wide stay a bounded share of the calls being made.

Per-call retry limits multiply load when the platform struggles: four attempts per call is
four times the load on a platform that is down. A :class:`RetryBudget` bounds retries across
the whole client instead, as Finagle's ``RetryBudget`` and gRPC's retry throttling do: within a
sliding window, retries may be at most ``ratio`` of the first attempts plus a small reserve of
``min_per_second`` retries per second, so a quiet client can still retry a few failures.
"""

from __future__ import annotations

import attrs

from ._budget_meter import BudgetMeter
from ._validate import field, number

__all__ = ["RetryBudget"]


_non_negative = field("RetryBudget", number, low_ok=True)
_window = field("RetryBudget", number)


@attrs.frozen
class RetryBudget:
    """How many retries the whole client may make, relative to its first attempts.

    Within any ``window`` seconds, retries are at most ``ratio`` times the first attempts made
    in that window plus ``min_per_second * window``. When the budget is spent, a failure that
    would be retried surfaces as it is.

    Attributes:
        ratio: Retries allowed per first attempt. Default 0.2 (Finagle's 20%): under a steady
            failure the platform sees at most 1.2 times the normal load.
        window: Seconds the first attempts and retries are counted over. Default 10.0.
        min_per_second: Retries per second always allowed, averaged over the window, so a
            client making few calls can still retry. Default 10.0.

    Raises:
        InvalidInputError: A setting is negative or not finite, or ``window`` is not > 0.
    """

    ratio: float = attrs.field(default=0.2, validator=_non_negative)
    window: float = attrs.field(default=10.0, validator=_window)
    min_per_second: float = attrs.field(default=10.0, validator=_non_negative)

    def build(self) -> BudgetMeter:
        """Make the counter enforcing this budget for one client."""
        return BudgetMeter(ratio=self.ratio, window=self.window, min_per_second=self.min_per_second)
