"""Per-call bookkeeping that the call pipeline fills in and bulk runs report."""

from __future__ import annotations


class CallStats:
    """What one logical call went through (retries and token refreshes included).

    ``attempts`` counts requests sent; ``ambiguous`` is set once an attempt failed in a way that
    may have reached the platform (a timeout, a dropped connection, a 5xx, a server error).
    """

    __slots__ = ("ambiguous", "attempts")

    def __init__(self) -> None:
        self.attempts = 0
        self.ambiguous = False
