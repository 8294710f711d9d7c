"""The component-wide CUBIC rate calculator, on a virtual clock."""

from __future__ import annotations

import math

import pytest

from kuaishou_mp._component_rate import (
    BETA,
    MEASURED_BETA,
    MIN_RATE,
    SAME_LIMIT,
    SCALE,
    ComponentRate,
)


def k_of(w_max: float, decrease: float) -> float:
    """CUBIC's K: when the curve started at ``decrease * w_max`` is back at ``w_max``."""
    return float((w_max * (1 - decrease) / SCALE) ** (1 / 3))


def send_at(calc: ComponentRate, rate: float, start: float, seconds: float) -> float:
    """Send evenly at ``rate`` calls/s from ``start`` for ``seconds``; return the end time."""
    n = round(rate * seconds)
    for i in range(n):
        calc.on_send(start + i / rate)
    return start + n / rate


def test_before_any_throttle_the_rate_is_the_cap_or_unlimited() -> None:
    free, capped = ComponentRate(), ComponentRate(cap=80.0)
    for calc in (free, capped):
        send_at(calc, 100.0, 0.0, 3.0)
        calc.on_success(3.0)
    assert free.rate == math.inf
    assert not free.throttled
    assert capped.rate == 80.0
    assert not capped.throttled


def test_measured_rate_follows_the_send_rate() -> None:
    calc = ComponentRate()
    end = send_at(calc, 200.0, 0.0, 4.0)
    assert calc.measured_rate(end) == pytest.approx(200.0, rel=0.01)
    end = send_at(calc, 50.0, end, 4.0)
    assert calc.measured_rate(end) == pytest.approx(50.0, rel=0.02)


def test_a_throttle_multiplies_the_measured_rate_by_beta() -> None:
    calc = ComponentRate()
    end = send_at(calc, 100.0, 0.0, 3.0)
    # The rate sent is counted over the platform's window, as its limit is.
    sent = calc.sent_in_window(end)
    assert 95 <= sent <= 100
    assert calc.on_throttle(end, sent_at=end - 0.01)
    assert calc.rate == pytest.approx(BETA * sent)
    assert calc.last_max == sent
    assert calc.recovery_time == pytest.approx((sent * (1 - BETA) / SCALE) ** (1 / 3))


def test_throttles_within_one_window_of_the_decrease_count_once() -> None:
    calc = ComponentRate()
    end = send_at(calc, 100.0, 0.0, 3.0)
    assert calc.on_throttle(end, sent_at=end - 0.01)
    first = calc.rate
    # Calls in flight at the old rate come back throttled too: no further decrease.
    assert not calc.on_throttle(end + 0.05, sent_at=end - 0.02)
    assert calc.rate == first
    # Sent at the new rate but while the platform's window still held the old rate's calls.
    assert not calc.on_throttle(end + 0.95, sent_at=end + 0.9)
    assert calc.rate == first
    # Sent a full window after the decrease and throttled: the new rate is still too high.
    assert calc.on_throttle(end + 1.1, sent_at=end + 1.0)
    assert calc.rate < first


def test_cubic_recovery_reaches_the_last_max_at_k_and_then_grows_beyond_it() -> None:
    calc = ComponentRate()
    t = send_at(calc, 300.0, 0.0, 3.0)
    calc.on_throttle(t, sent_at=t)
    w_max, k, t0 = calc.last_max, calc.recovery_time, t
    low = calc.rate
    samples: dict[float, float] = {}
    # Keep sending faster than the curve, so the 2x-measured ceiling never binds.
    for frac in (0.25, 0.5, 0.75, 1.0, 1.5):
        t = send_at(calc, 400.0, t, t0 + frac * k - t)
        calc.on_success(t)
        samples[frac] = calc.rate
    assert calc.curve(t0 + k) == pytest.approx(w_max)
    assert low < samples[0.25] < samples[0.5] < samples[0.75] < samples[1.0]
    # Concave before K: the first half of the way recovers more than the second half.
    assert samples[0.5] - low > samples[1.0] - samples[0.5]
    assert samples[1.0] == pytest.approx(w_max, rel=1e-3)
    assert samples[1.5] > w_max


def test_the_last_max_is_what_got_through_when_less_than_what_was_sent() -> None:
    calc = ComponentRate()
    t = 0.0
    for i in range(300):  # 100/s sent for 3 s, only every other call answered without a throttle
        calc.on_send(t)
        if i % 2:
            calc.on_success(t)
        t += 0.01
    assert calc.measured_rate(t) == pytest.approx(100.0, rel=0.02)
    assert calc.good_rate(t) == pytest.approx(50.0, rel=0.02)
    # The window of the throttle is full: what got through in it is the platform's capacity.
    assert calc.got_through(t) == 50
    assert calc.on_throttle(t, sent_at=t)
    assert calc.last_max == 50.0
    # The first throttle: the client sent unpaced, so it stays at the capacity measured (not
    # 0.7 x it), the curve at its flat top.
    assert calc.rate == pytest.approx(MEASURED_BETA * 50.0)
    assert calc.recovery_time == pytest.approx(k_of(50.0, MEASURED_BETA))
    # Evenly spread answers leave the window as new ones come: sending resumes at once.
    assert calc.resume_at == pytest.approx(t, abs=0.06)


def probe_then_throttle(calc: ComponentRate, t: float, through: int) -> float:
    """After a first throttle at 100/s through: 2 s of sending at 200/s of which ``through``
    per second get through, then a throttle; returns its time."""
    for i in range(400):
        calc.on_send(t)
        if i % 200 < through:
            calc.on_success(t)
        t += 0.005
    return t


@pytest.mark.parametrize(
    ("through", "decrease"),
    [
        (100, MEASURED_BETA),  # the probe found the same limit: no reason to back off
        (90, BETA),  # less got through: the capacity fell
        (60, BETA),
    ],
)
def test_a_probe_that_finds_the_limit_again_stays_there_and_a_fall_backs_off_by_beta(
    through: int, decrease: float
) -> None:
    calc = ComponentRate()
    t = 0.0
    for i in range(400):  # 200/s sent for 2 s, 100/s of them got through
        calc.on_send(t)
        if i % 2:
            calc.on_success(t)
        t += 0.005
    assert calc.on_throttle(t, sent_at=t)
    assert calc.last_max == 100.0
    t += 10.0  # the curve has gone beyond the limit, probing
    calc.on_success(t)
    assert calc.rate > 100.0
    t = probe_then_throttle(calc, t, through)
    # The window ends inside a slice: what it counts covers 99% to 100% of a second.
    got = calc.got_through(t)
    assert through - 2 <= got <= through
    assert (got >= SAME_LIMIT * 100) == (decrease == MEASURED_BETA)
    assert calc.on_throttle(t, sent_at=t)
    assert calc.last_max == got
    assert calc.rate == pytest.approx(decrease * got)
    assert calc.recovery_time == pytest.approx(k_of(got, decrease))


def test_after_a_first_burst_the_limit_is_what_got_through_and_sending_waits_for_room() -> None:
    """An unlimited client's first burst fills the platform's window in a fraction of it."""
    calc = ComponentRate()
    t = 0.0
    for _ in range(300):  # 300 admitted in the first 75 ms (4,000 calls/s)
        calc.on_send(t)
        t += 0.00025
    for _ in range(100):  # then the window is full
        calc.on_send(t)
        t += 0.00025
    # The first throttle comes back while 50 ms of the burst's answers are still on the way.
    for i in range(250):
        calc.on_success(0.05 + i * 0.00025)
    assert calc.on_throttle(0.1125, sent_at=0.0625)
    assert calc.last_max == 250.0
    assert calc.rate == pytest.approx(MEASURED_BETA * 250.0)
    # The throttles that follow (sent before the decrease) bring the rest of the burst's answers.
    for i in range(250, 300):
        calc.on_success(0.05 + i * 0.00025)
    assert not calc.on_throttle(0.13, sent_at=0.08)
    assert calc.last_max == 300.0
    assert calc.recovery_time == pytest.approx(k_of(300.0, MEASURED_BETA))  # the same decrease
    # A smoothed rate would have said 600/s (300 answers in the first half-second bucket).
    assert calc.good_rate(0.13) == pytest.approx(600.0)
    calc.on_success(0.14)
    assert calc.rate == pytest.approx(MEASURED_BETA * 300.0, rel=1e-3)
    # Every call sent before the burst has aged out of the window would be throttled again.
    assert 1.0 <= calc.resume_at <= 1.06


def test_restore_refuses_a_state_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="10 floats"):
        ComponentRate().restore((1.0, 2.0))


def test_the_rate_never_exceeds_the_cap() -> None:
    calc = ComponentRate(cap=50.0)
    t = send_at(calc, 100.0, 0.0, 3.0)
    calc.on_throttle(t, sent_at=t)
    assert calc.rate == pytest.approx(50.0 * BETA)  # the rate allowed, not the one measured
    seen = []
    for _ in range(60):
        t = send_at(calc, 100.0, t, 1.0)
        calc.on_success(t)
        seen.append(calc.rate)
    assert max(seen) == 50.0
    assert calc.curve(t) > 50.0  # the uncapped curve went on


def test_the_rate_never_falls_below_the_floor() -> None:
    calc = ComponentRate()
    t = send_at(calc, 10.0, 0.0, 2.0)
    for _ in range(30):
        t += 1.0
        calc.on_send(t)
        calc.on_throttle(t, sent_at=t)
    assert calc.rate == MIN_RATE


def test_an_idle_client_builds_up_no_allowance_beyond_the_limit_it_learned() -> None:
    calc = ComponentRate()
    t = send_at(calc, 100.0, 0.0, 3.0)
    calc.on_throttle(t, sent_at=t)  # nothing got through: the rate sent comes down by beta
    assert calc.rate == pytest.approx(BETA * calc.last_max)
    # Then a trickle of 5/s for a long time: the curve rises far, the rate stops at the rate
    # that failed (10 would be twice what is sent).
    t = send_at(calc, 5.0, t, 60.0)
    calc.on_success(t)
    assert calc.curve(t) > 1000
    assert calc.rate == calc.last_max
    # Sending at 150/s, it probes up to twice that.
    t = send_at(calc, 150.0, t, 3.0)
    calc.on_success(t)
    assert calc.rate == pytest.approx(2 * calc.measured_rate(t))


def test_after_a_pause_the_rate_is_the_capacity_measured_not_twice_what_was_sent() -> None:
    """Held back (a full window, then a quiet spell), the send meter says little was sent;
    the capacity was measured, and the rate recovers to it regardless."""
    calc = ComponentRate()
    t = 0.0
    for _ in range(300):  # 100/s for 3 s, every call through
        calc.on_send(t)
        calc.on_success(t)
        t += 0.01
    assert calc.on_throttle(t, sent_at=t)
    assert calc.last_max == 100.0
    t += 5.0  # nothing sent for 5 s
    calc.on_send(t)
    calc.on_success(t)
    assert 2 * calc.measured_rate(t) < 60.0
    assert calc.curve(t) > 100.0
    assert calc.rate == 100.0


def test_state_round_trips_through_ten_floats() -> None:
    calc = ComponentRate(cap=500.0)
    t = send_at(calc, 300.0, 0.0, 3.0)
    calc.on_throttle(t, sent_at=t)
    state = calc.state()
    assert len(state) == 10
    assert all(isinstance(x, float) for x in state)
    other = ComponentRate(cap=500.0)
    other.restore(state)
    for c in (calc, other):
        c.on_send(t + 2.0)
        c.on_success(t + 2.0)
    assert other.rate == calc.rate
    assert other.state() == calc.state()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"beta": 1.0},
        {"beta": 0.0},
        {"scale": 0.0},
        {"cap": 0.0},
        {"cap": math.inf},
        {"min_rate": -1.0},
    ],
)
def test_bad_constants_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ComponentRate(**kwargs)


def test_closed_loop_against_a_fixed_limit_settles_near_it() -> None:
    """A virtual platform admitting L calls per second; the client sends at the learned rate."""
    limit = 300
    calc = ComponentRate()
    dt = 0.01
    window: list[float] = []
    ok = throttled = 0
    credit = 0.0
    demand = 2000.0  # the client could send far faster
    t = 0.0
    ok_late = 0
    while t < 60.0:
        credit += min(calc.rate, demand) * dt
        while credit >= 1.0:
            credit -= 1.0
            calc.on_send(t)
            window = [a for a in window if a > t - 1.0] if len(window) >= limit else window
            if len(window) < limit:
                window.append(t)
                ok += 1
                ok_late += t >= 20.0
                calc.on_success(t)
            else:
                throttled += 1
                calc.on_throttle(t, sent_at=t)
        t += dt
    assert ok_late / 40.0 >= 0.8 * limit  # after learning, most of the limit is used
    assert throttled / (ok + throttled) < 0.1


def test_late_answers_of_the_full_window_raise_the_last_max_of_a_decrease() -> None:
    calc = ComponentRate()
    t = 0.0
    for i in range(300):  # a first episode: 300/s sent, 280 of them answered so far
        calc.on_send(t)
        if i < 280:
            calc.on_success(t)
        t += 1 / 300
    assert calc.on_throttle(t, sent_at=t)
    t += 1.5  # past the hold-off: a probe above the limit is throttled
    for _ in range(300):
        calc.on_send(t)
        calc.on_success(t)
        t += 1 / 330
    sent_at = t
    for _ in range(20):  # only part of what the window admitted is answered yet
        calc.on_send(t)
        t += 1 / 330
    assert calc.on_throttle(t, sent_at=sent_at)
    first_max, first_k = calc.last_max, calc.recovery_time
    for _ in range(10):  # the rest of the admitted calls' answers come in
        calc.on_success(t)
    assert not calc.on_throttle(t + 0.01, sent_at=sent_at + 0.005)
    assert calc.last_max == calc.got_through(t + 0.01) > first_max
    assert calc.recovery_time > first_k
    # The probe found the limit again (MEASURED_BETA), and the curve keeps that decrease.
    assert calc.recovery_time == pytest.approx(k_of(calc.last_max, MEASURED_BETA))
    calc.on_success(t + 0.02)
    assert calc.rate == pytest.approx(MEASURED_BETA * calc.last_max, rel=0.01)
