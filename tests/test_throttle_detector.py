"""Telling component-wide throttling from one authorizer over its own limit, virtual clock."""

from __future__ import annotations

import pytest

from kuaishou_mp._throttle_detector import ComponentThrottleDetector


def test_a_single_hot_authorizer_is_never_component_wide() -> None:
    d = ComponentThrottleDetector()
    t = 0.0
    for _ in range(200):
        d.on_send("hot", t)
        assert not d.on_throttle("hot", t + 0.005)
        t += 0.02


def test_lonely_throttles_of_two_authorizers_are_component_wide() -> None:
    d = ComponentThrottleDetector()
    d.on_send("a", 0.0)
    assert not d.on_throttle("a", 0.01)  # one lonely authorizer could be a fluke
    d.on_send("b", 0.3)
    assert d.on_throttle("b", 0.31)


def test_the_same_authorizer_lonely_twice_is_not_two_authorizers() -> None:
    d = ComponentThrottleDetector()
    d.on_send("a", 0.0)
    assert not d.on_throttle("a", 0.01)
    d.on_send("a", 5.0)
    assert not d.on_throttle("a", 5.01)


def test_lonely_throttles_further_apart_than_the_window_do_not_add_up() -> None:
    d = ComponentThrottleDetector()
    d.on_send("a", 0.0)
    assert not d.on_throttle("a", 0.01)
    d.on_send("b", 1.5)
    assert not d.on_throttle("b", 1.51)


def test_an_authorizer_with_several_recent_calls_is_not_lonely() -> None:
    d = ComponentThrottleDetector()
    for i in range(3):
        d.on_send("busy1", 0.1 * i)
        d.on_send("busy2", 0.1 * i)
    assert not d.on_throttle("busy1", 0.25)
    assert not d.on_throttle("busy2", 0.26)
    assert d.calls("busy1", 0.26) == 3


def test_calls_older_than_two_windows_are_forgotten() -> None:
    d = ComponentThrottleDetector()
    for i in range(5):
        d.on_send("a", 0.1 * i)
    d.on_send("a", 3.0)
    d.on_send("b", 3.1)
    assert d.calls("a", 3.2) == 1
    assert not d.on_throttle("a", 3.2)
    assert d.on_throttle("b", 3.25)


def test_many_distinct_throttled_authorizers_are_component_wide_even_if_busy() -> None:
    d = ComponentThrottleDetector(min_distinct=10)
    apps = [f"app{i}" for i in range(10)]
    for app in apps:
        d.on_send(app, 0.0)
        d.on_send(app, 0.1)
    results = [d.on_throttle(app, 0.2 + i * 0.01) for i, app in enumerate(apps)]
    assert results == [False] * 9 + [True]


@pytest.mark.parametrize("kwargs", [{"window": 0.0}, {"min_lonely": 0}, {"min_distinct": 0}])
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ComponentThrottleDetector(**kwargs)  # type: ignore[arg-type]
