"""The sliding-window counters under the capacity calculators, on a virtual clock."""

from __future__ import annotations

import pytest

from kuaishou_mp._windows import DistinctKeys, SlidingCount


def test_sliding_count_forgets_whole_buckets_as_time_passes() -> None:
    c = SlidingCount(10.0, buckets=10)
    for t in range(10):
        c.add(float(t), amount=t + 1)  # 1 at t=0 ... 10 at t=9
    assert c.total(9.5) == 55
    assert c.total(10.0) == 54  # the bucket of t=0 left
    assert c.total(14.0) == 55 - 15
    assert c.total(18.99) == 10
    assert c.total(19.0) == 0


def test_sliding_count_after_a_gap_longer_than_the_window_starts_empty() -> None:
    c = SlidingCount(1.0, buckets=4)
    for _ in range(50):
        c.add(0.1)
    c.add(100.0)
    assert c.total(100.0) == 1


def test_sliding_count_puts_a_slightly_late_reading_in_the_newest_bucket() -> None:
    c = SlidingCount(1.0, buckets=10)
    c.add(5.05)
    c.add(5.01)  # a clock read before a suspension, recorded after a newer one
    assert c.total(5.05) == 2
    c.clear()
    assert c.total(5.05) == 0


def test_sliding_count_knows_where_its_oldest_event_lies() -> None:
    c = SlidingCount(1.0, buckets=10)
    assert c.oldest(3.0) is None
    c.add(3.02)
    c.add(3.47)
    c.add(3.91)
    assert c.oldest(3.95) == pytest.approx(3.0)  # the slice [3.0, 3.1) holds the first
    assert c.oldest(4.05) == pytest.approx(3.4)  # that slice left the window
    assert c.oldest(4.55) == pytest.approx(3.9)
    assert c.oldest(4.95) is None


def test_distinct_keys_counts_keys_not_events_and_expires_them() -> None:
    d = DistinctKeys(1.0)
    assert d.add("a", 0.0) == 1
    assert d.add("a", 0.5) == 1
    assert d.add("b", 0.6) == 2
    assert d.count(1.0) == 2  # a's event at 0.5 is still inside (0.0, 1.0]
    assert d.count(1.5) == 1  # only b's event at 0.6
    assert d.count(1.6) == 0
    d.add("c", 2.0)
    d.clear()
    assert d.count(2.0) == 0


@pytest.mark.parametrize("window", [0.0, -1.0, float("inf")])
def test_bad_windows_are_refused(window: float) -> None:
    with pytest.raises(ValueError, match="window"):
        SlidingCount(window)
    with pytest.raises(ValueError, match="window"):
        DistinctKeys(window)
