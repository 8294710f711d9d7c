"""Per-call counts handed over in batches: the calculators count ``count`` events as that many
single ones, and ``Capacity`` (which batches a slice's counts while nothing is learned and the
circuit is closed) decides as it would if every call were counted on its own."""

from __future__ import annotations

import time

from kuaishou_mp import RetryBudget
from kuaishou_mp._budget_meter import BudgetMeter
from kuaishou_mp._circuit import OutageCircuit
from kuaishou_mp._component_rate import ComponentRate, RateMeter
from kuaishou_mp._pipeline import Capacity


def test_a_rate_meter_counts_a_batch_as_its_events() -> None:
    one, batch = RateMeter(), RateMeter()
    for t in (0.1, 0.2, 0.7, 1.3, 1.4):  # across three 0.5 s buckets
        for _ in range(4):
            one.tick(t)
        batch.tick(t, 4)
    assert batch.rate(1.5) == one.rate(1.5) > 0


def test_the_learned_rate_counts_batches_of_sends_and_answers_as_their_events() -> None:
    one, batch = ComponentRate(), ComponentRate()
    for t in (0.0, 0.25, 0.5, 0.75):
        for _ in range(50):
            one.on_send(t)
            one.on_success(t + 0.05)
        batch.on_send(t, 50)
        batch.on_success(t + 0.05, 50)
    assert batch.sent_in_window(0.9) == one.sent_in_window(0.9) == 200
    assert batch.got_through(0.9) == one.got_through(0.9) == 200
    assert batch.measured_rate(0.9) == one.measured_rate(0.9)
    assert batch.good_rate(0.9) == one.good_rate(0.9)


def test_a_circuit_weighs_a_batch_of_answers_as_its_answers() -> None:
    one, batch = OutageCircuit(window=2.0), OutageCircuit(window=2.0)
    for _ in range(30):
        one.on_success(0.5)
    batch.on_success(0.5, 30)
    # 30 answers: the 31st failure (of many authorizers) is the first above half of the calls.
    for i in range(30):
        one.on_failure(f"ks_{i}", 1.0)
        batch.on_failure(f"ks_{i}", 1.0)
    assert (one.state, batch.state) == ("closed", "closed")
    one.on_failure("ks_30", 1.0)
    batch.on_failure("ks_30", 1.0)
    assert (one.state, batch.state) == ("open", "open")


def test_a_budget_meter_counts_a_batch_of_first_attempts_as_its_attempts() -> None:
    one = BudgetMeter(ratio=0.2, window=10.0, min_per_second=0.0)
    batch = BudgetMeter(ratio=0.2, window=10.0, min_per_second=0.0)
    for _ in range(50):
        one.record_request(1.0)
    batch.record_request(1.0, 50)
    assert batch.available(2.0) == one.available(2.0) == 10.0


def test_the_circuit_opens_after_the_same_failures_as_without_batching() -> None:
    capacity = Capacity()
    reference = OutageCircuit(window=2.0)
    for _ in range(40):
        capacity.answered(time.monotonic())
        reference.on_success(0.0)
    opened_after = None
    for i in range(60):
        capacity.failed(f"ks_{i}", time.monotonic())
        if capacity.circuit.state == "open":
            opened_after = i + 1
            break
    reference_after = None
    for i in range(60):
        reference.on_failure(f"ks_{i}", 0.1)
        if reference.state == "open":
            reference_after = i + 1
            break
    assert opened_after == reference_after == 41


def test_the_retry_budget_sees_every_first_attempt_made_before_a_retry() -> None:
    budget = RetryBudget(ratio=0.2, window=10.0, min_per_second=0.0)
    capacity = Capacity()
    for _ in range(100):
        capacity.first_attempt(budget, time.monotonic())
    granted = 0
    while capacity.withdraw_retry(budget):
        granted += 1
    assert granted == 20  # 20% of the 100 first attempts, none of them lost in a batch


def test_nothing_is_batched_once_a_rate_is_learned() -> None:
    capacity = Capacity()
    sent = []
    for i in range(300):  # a burst: a third of it throttled, for distinct authorizers
        sent_at = capacity.try_pace(f"ks_{i}")
        assert sent_at is not None  # nothing learned yet: every send goes at once
        sent.append(sent_at)
    for _ in range(200):
        capacity.answered(time.monotonic())
    for i in range(200, 300):
        capacity.answered(time.monotonic(), throttled=True)
        capacity.throttled(f"ks_{i}", sent[i])
    assert capacity.learned_rate() is not None
    before = capacity.rate.got_through(time.monotonic())
    capacity.answered(time.monotonic())
    # Counted at once (the curve moves with every answer once a rate is learned).
    assert capacity.rate.got_through(time.monotonic()) == before + 1
