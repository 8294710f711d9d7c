"""Pacing at the learned component-wide rate: ``Capacity.try_pace`` takes a slot that is due
without a coroutine, and leaves every other case (a later slot, a shared rate) to ``pace``."""

from __future__ import annotations

import time

from kuaishou_mp._pipeline import Capacity


class _Shared:
    """A shared learned rate that records being asked."""

    def __init__(self) -> None:
        self.paced = 0

    async def pace(self, got_through: int = 0) -> tuple[float, float | None] | None:
        self.paced += 1
        return 0.0, 5.0

    async def report(self, got_through: int) -> None:
        pass

    async def throttled(self, resume_in: float, got_through: int = 0) -> float | None:
        return None


def test_nothing_learned_every_send_goes_at_once_and_is_counted() -> None:
    capacity = Capacity()
    before = time.monotonic()
    sent = [capacity.try_pace(f"ks_{i % 3}") for i in range(30)]
    assert all(t is not None and before <= t <= time.monotonic() for t in sent)
    capacity.settle()
    now = time.monotonic()
    assert capacity.rate.sent_in_window(now) == 30
    assert capacity.detector.calls("ks_0", now) == 10


async def test_a_due_slot_is_taken_and_a_later_one_is_left_to_pace() -> None:
    capacity = Capacity(cap=1.0)  # one slot a second
    before = time.monotonic()
    first = capacity.try_pace("ks_a")
    assert first is not None
    assert before <= first <= time.monotonic()
    # The next slot is a second away: nothing is taken and nothing counted.
    assert capacity.try_pace("ks_b") is None
    capacity.settle()
    assert capacity.rate.sent_in_window(time.monotonic()) == 1
    assert capacity.detector.calls("ks_b", time.monotonic()) == 0


async def test_pace_waits_for_the_slot_try_pace_left() -> None:
    capacity = Capacity(cap=5.0)  # a slot every 200 ms
    first = capacity.try_pace("ks_a")
    assert first is not None
    assert capacity.try_pace("ks_a") is None
    sent_at = await capacity.pace("ks_a")
    # The slot 200 ms after the first send (the loop may wake a clock tick early).
    assert sent_at >= first + 0.19
    capacity.settle()
    assert capacity.rate.sent_in_window(time.monotonic()) == 2


async def test_a_shared_rate_is_always_left_to_pace() -> None:
    shared = _Shared()
    capacity = Capacity(shared=shared)
    assert capacity.try_pace("ks_a") is None
    assert shared.paced == 0
    await capacity.pace("ks_a")
    assert shared.paced == 1
    assert capacity.learned_rate() == 5.0
