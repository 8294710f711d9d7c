"""The numbers a rate limiter runs on, derived once from a :class:`~kuaishou_mp.RateLimit`.

Both limiters take them from here: the in-process one (``ratelimit.py``) keeps them as
attributes, the Redis one writes them into its Lua script's first line
(``_redis_limiter_lua.py``). Deriving them in one place is what keeps the two algorithms on the
same intervals, tolerances and recovery horizon.
"""

from __future__ import annotations

import math
from typing import Protocol

import attrs

__all__ = ["RateConfig", "RateParams", "rate_params"]


class RateConfig(Protocol):
    """The fields of a ``RateLimit`` the derivation reads (a protocol, so no import circle)."""

    @property
    def per_authorizer_qps(self) -> float | None:
        """Calls per second for each authorizer; ``None``: none."""

    @property
    def burst(self) -> int:
        """Calls one authorizer may make back to back."""

    @property
    def global_qps(self) -> float | None:
        """Calls per second for the whole client; ``None``: no hard cap."""

    @property
    def global_burst(self) -> int:
        """Calls that may go back to back against ``global_qps``."""

    @property
    def adaptive(self) -> bool:
        """Whether penalties slow an authorizer down."""

    @property
    def slow_factor(self) -> float:
        """What each penalty multiplies an authorizer's rate by."""

    @property
    def min_factor(self) -> float:
        """Floor of the rate factor."""

    @property
    def recovery_after(self) -> float:
        """Quiet seconds before, and between, recovery steps."""

    @property
    def recovery_step(self) -> float:
        """What each quiet interval multiplies the factor by."""


@attrs.frozen
class RateParams:
    """GCRA and adaptive-rate constants, in seconds.

    Attributes:
        rate: Per-authorizer calls per second; ``None`` when there is no per-authorizer limit.
        interval: Emission interval ``T`` per authorizer (``margin / rate``); 0 = no limit.
        tau: Per-authorizer tolerance ``(burst - 1) * T``. It stays that of the configured
            rate: a slowed key bursts less, and the exactness bound holds whatever the factor.
        global_interval: Emission interval of the global limit; 0 = no global limit (an
            interval of 0 makes the global GCRA admit everything).
        global_tau: Tolerance of the global limit.
        adaptive: Whether penalties slow a key (needs a per-authorizer limit).
        slow_factor: Factor applied on each penalty.
        min_factor: Floor of the factor.
        recovery_step: Factor gained per quiet ``recovery_after``.
        recovery_after: Seconds per recovery step.
        forget_after: Seconds after a penalty by which even a key at the floor is back to
            1.0, so its penalty can be forgotten.
    """

    rate: float | None
    interval: float
    tau: float
    global_interval: float
    global_tau: float
    adaptive: bool
    slow_factor: float
    min_factor: float
    recovery_step: float
    recovery_after: float
    forget_after: float


def rate_params(config: RateConfig, *, margin: float = 1.0) -> RateParams:
    """Derive the limiter constants from ``config``.

    Args:
        config: A ``RateLimit`` (already validated).
        margin: Factor (>= 1) by which intervals are lengthened; the Redis limiter spaces
            calls a little further apart to absorb arrival jitter between processes.
    """
    qps, g_qps = config.per_authorizer_qps, config.global_qps
    interval = 0.0 if qps is None else margin / qps
    g_interval = 0.0 if g_qps is None else margin / g_qps
    steps = math.ceil(math.log(1.0 / config.min_factor) / math.log(config.recovery_step))
    return RateParams(
        rate=None if qps is None else float(qps),
        interval=interval,
        tau=(config.burst - 1) * interval,
        global_interval=g_interval,
        global_tau=(config.global_burst - 1) * g_interval,
        adaptive=config.adaptive and qps is not None,
        slow_factor=float(config.slow_factor),
        min_factor=float(config.min_factor),
        recovery_step=float(config.recovery_step),
        recovery_after=float(config.recovery_after),
        forget_after=float(config.recovery_after) * steps,
    )
