"""When a share of throttled answers lowers the client's learned rate, through ``Capacity``.

Scattered throttles (a few percent of the calls, each for another authorizer) look
component-wide to the detector; only a real share of the calls may lower the rate, and once a
limit is known a smaller share does, while what gets through stays at that limit. The rule is
a pure function; the client's capacity state is checked to apply it, within milliseconds
(inside the one-second windows the counts cover).
"""

from __future__ import annotations

import time

import pytest

from kuaishou_mp._component_rate import MEASURED_BETA
from kuaishou_mp._pipeline import Capacity
from kuaishou_mp._throttle_detector import enough_to_lower


async def _round(capacity: Capacity, prefix: str, ok: int, throttled: int) -> None:
    """Send ``ok + throttled`` calls for distinct authorizers; answer ``throttled`` of them
    with a throttle (reported to the capacity) and the rest without."""
    sent: list[tuple[str, float]] = []
    for i in range(ok + throttled):
        app_id = f"{prefix}{i}"
        sent.append((app_id, await capacity.pace(app_id)))
    for _ in sent[:ok]:
        capacity.answered(time.monotonic())
    for app_id, sent_at in sent[ok:]:
        capacity.answered(time.monotonic(), throttled=True)
        capacity.throttled(app_id, sent_at)


async def test_scattered_throttles_never_lower_the_rate() -> None:
    capacity = Capacity()
    await _round(capacity, "ks_s", ok=950, throttled=50)  # 5%, every one a lonely authorizer
    assert capacity.learned_rate() is None


async def test_a_real_share_of_throttles_learns_the_capacity_that_got_through() -> None:
    capacity = Capacity()
    await _round(capacity, "ks_b", ok=300, throttled=100)  # a burst met a full window
    assert capacity.learned_rate() == pytest.approx(MEASURED_BETA * 300.0)


async def test_a_lonely_throttle_is_never_taken_for_the_authorizers_own_limit() -> None:
    capacity = Capacity()
    sent_at = await capacity.pace("ks_lonely")
    # One call in the last second cannot be over its own limit: the authorizer is not slowed
    # down, and one throttle lowers nothing either.
    assert capacity.throttled("ks_lonely", sent_at)
    assert capacity.learned_rate() is None
    for _ in range(3):
        sent_at = await capacity.pace("ks_hot")
    assert not capacity.throttled("ks_hot", sent_at)  # perhaps its own limit: slowed down
    # Lonely, but too few to lower the rate: still the component's.
    await _round(capacity, "ks_s", ok=950, throttled=50)
    assert capacity.learned_rate() is None
    assert capacity.throttled("ks_s0", time.monotonic())


def test_before_any_limit_is_known_a_tenth_of_the_calls_must_be_throttled() -> None:
    assert not enough_to_lower(99, 1000, got_through=901, known_limit=None)
    assert enough_to_lower(100, 1000, got_through=900, known_limit=None)


def test_at_a_known_limit_a_small_share_will_do() -> None:
    # 3.2% throttled while what got through (300) stays at the limit learned (300).
    assert enough_to_lower(10, 310, got_through=300, known_limit=300.0)
    assert enough_to_lower(10, 316, got_through=306, known_limit=300.0)  # within 2%
    assert not enough_to_lower(8, 310, got_through=302, known_limit=300.0)  # 2.6%


def test_above_a_known_limit_a_small_share_is_still_scattered() -> None:
    # The same 3.2%, but more got through than the limit learned: not a limit.
    assert not enough_to_lower(13, 413, got_through=400, known_limit=300.0)
    assert enough_to_lower(42, 420, got_through=378, known_limit=300.0)  # 10% always does


class FlakyStore:
    """A shared learned rate that answers 123 calls/s until it goes down."""

    def __init__(self) -> None:
        self.up = True
        self.reported = 0

    async def pace(self, got_through: int = 0) -> tuple[float, float | None] | None:
        self.reported += got_through
        return (0.0, 123.0) if self.up else None

    async def report(self, got_through: int) -> None:
        self.reported += got_through

    async def throttled(self, resume_in: float, got_through: int = 0) -> float | None:
        self.reported += got_through
        return 123.0 if self.up else None


async def test_the_shared_rate_is_reported_and_the_own_one_when_the_store_fails() -> None:
    store = FlakyStore()
    capacity = Capacity(shared=store)
    capacity.answered(time.monotonic())
    await capacity.pace("ks_a")
    assert capacity.learned_rate() == 123.0
    assert store.reported == 1  # the answer that got through went with the next send
    store.up = False
    await capacity.pace("ks_a")
    assert capacity.learned_rate() is None  # nothing learned in this process
