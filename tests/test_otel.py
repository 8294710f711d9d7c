"""OpenTelemetryHooks: spans and metrics by the HTTP client conventions, fed events directly.

Events are built by the same dispatcher the call pipeline uses (``HookSet``), with the URL
redacted by the same helper, so what is checked here is what a wired client would export.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hardening_support import CANARY, leaks
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kuaishou_mp import (
    AttemptStart,
    BulkProgressEvent,
    RateLimitedError,
    RequestTimeoutError,
    TokenExpiredError,
    TransportError,
)
from kuaishou_mp._hookset import HookSet
from kuaishou_mp._scrub import redact_url
from kuaishou_mp.otel import DURATION_BUCKETS, OpenTelemetryHooks

HOST = "open.kuaishou.com"
PATH = "/openapi/mp/auth/app/info"
RAW_URL = f"https://{HOST}{PATH}?component_app_id=ks_c&access_token={CANARY}"


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.otel = OpenTelemetryHooks(self.tracer_provider, self.meter_provider)
        self.hooks = HookSet([self.otel])

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "kuaishou_mp"
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def start(self, attempt: int = 1, app_id: str = "ks_a", wait: float = 0.0) -> AttemptStart:
        event = self.hooks.attempt_start(
            endpoint="app_info",
            method="GET",
            url=redact_url(RAW_URL),
            app_id=app_id,
            attempt=attempt,
            limiter_wait=wait,
        )
        assert event is not None
        return event


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


def points(found: dict[str, list[Any]], name: str) -> dict[frozenset[tuple[str, Any]], Any]:
    return {frozenset(p.attributes.items()): p for p in found.get(name, [])}


def test_a_successful_attempt(tel: Telemetry) -> None:
    begun = time.time_ns()
    event = tel.start(wait=0.02)
    tel.hooks.attempt_end(event, duration=0.125, status=200, result_code=1)
    (span,) = tel.spans()
    assert span.name == f"GET {PATH}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "server.address": HOST,
        "server.port": 443,
        "url.full": f"https://{HOST}{PATH}?component_app_id=ks_c&access_token=REDACTED",
        "url.scheme": "https",
        "kuaishou.endpoint": "app_info",
        "kuaishou.app_id": "ks_a",
        "kuaishou.limiter_wait": 0.02,
        "http.response.status_code": 200,
        "kuaishou.result_code": 1,
    }
    # The real times: the event's start, and exactly the measured duration.
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.start_time == event.started_at_ns >= begun
    assert span.end_time - span.start_time == 125_000_000
    assert span.parent is None


def test_attempt_spans_are_children_of_the_callers_span(tel: Telemetry) -> None:
    tracer = tel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("GET /sync") as parent:
        first = tel.start(attempt=1)
        tel.hooks.attempt_end(first, duration=0.01, error=TransportError("reset", status=503))
        second = tel.start(attempt=2)
        tel.hooks.attempt_end(second, duration=0.01, status=200, result_code=1)
    spans = {s.name: s for s in tel.spans() if s.name != "GET /sync"}
    attempts = [s for s in tel.spans() if s.kind is SpanKind.CLIENT]
    assert len(attempts) == 2
    assert len(spans) == 1
    context = parent.get_span_context()
    for span in attempts:
        assert span.parent is not None
        assert span.parent.span_id == context.span_id
        assert span.context is not None
        assert span.context.trace_id == context.trace_id
    a1, a2 = attempts
    assert a1.attributes is not None
    assert a2.attributes is not None
    assert "http.request.resend_count" not in a1.attributes
    assert a2.attributes["http.request.resend_count"] == 1
    assert a1.status.status_code is StatusCode.ERROR
    assert a1.attributes["error.type"] == "TransportError"
    assert a1.attributes["http.response.status_code"] == 503
    assert a2.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (TokenExpiredError("token expired", code=100200108), 200, 100200108),
        (RateLimitedError("too many calls", code=400002), 200, 400002),
        (RequestTimeoutError("timed out after 5s"), None, None),
        (TransportError("cannot connect", request_sent=False), None, None),
        (TransportError("bad gateway", status=502), 502, None),
    ],
    ids=["platform error", "throttled", "timeout", "transport", "http status"],
)
def test_failed_attempts(
    tel: Telemetry, error: Exception, status: int | None, code: int | None
) -> None:
    tel.hooks.attempt_end(tel.start(), duration=0.5, error=error)
    (span,) = tel.spans()
    attributes = dict(span.attributes or {})
    name = type(error).__name__
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == name
    assert attributes["error.type"] == name
    assert attributes.get("http.response.status_code") == status
    assert attributes.get("kuaishou.result_code") == code
    (point,) = tel.metrics()["http.client.request.duration"]
    assert point.attributes.get("error.type") == name
    assert point.attributes.get("http.response.status_code") == status


def test_concurrent_attempts_end_in_any_order(tel: Telemetry) -> None:
    starts = [tel.start(app_id=f"ks_{i}") for i in range(5)]
    for i, event in reversed(list(enumerate(starts))):
        tel.hooks.attempt_end(event, duration=0.01 * (i + 1), status=200, result_code=1)
    spans = tel.spans()
    assert len(spans) == 5
    for span in spans:
        assert span.attributes is not None
        assert span.start_time
        assert span.end_time
        i = int(str(span.attributes["kuaishou.app_id"]).removeprefix("ks_"))
        assert span.end_time - span.start_time == round(0.01 * (i + 1) * 1e9)
    assert tel.otel._spans == {}  # nothing left open


def test_an_end_without_its_start_records_no_span(tel: Telemetry) -> None:
    stranger = AttemptStart("app_info", "GET", redact_url(RAW_URL), "ks_x", 1, 0.0, 1)
    tel.hooks.attempt_end(stranger, duration=0.1, status=200, result_code=1)
    assert tel.spans() == []
    (point,) = tel.metrics()["http.client.request.duration"]
    assert point.count == 1


def test_duration_histogram(tel: Telemetry) -> None:
    for duration in (0.004, 0.03, 0.03, 2.0):
        tel.hooks.attempt_end(tel.start(), duration=duration, status=200, result_code=1)
    tel.hooks.attempt_end(tel.start(), duration=0.2, error=RequestTimeoutError("x"))
    found = tel.metrics()
    by = points(found, "http.client.request.duration")
    base = {
        ("http.request.method", "GET"),
        ("server.address", HOST),
        ("server.port", 443),
        ("url.template", PATH),
    }
    ok = by[frozenset({*base, ("http.response.status_code", 200)})]
    assert isinstance(ok, HistogramDataPoint)
    assert ok.count == 4
    assert ok.sum == pytest.approx(2.064)
    assert tuple(ok.explicit_bounds) == DURATION_BUCKETS
    assert ok.bucket_counts[0] == 1
    assert ok.bucket_counts[3] == 2
    assert ok.bucket_counts[10] == 1
    failed = by[frozenset({*base, ("error.type", "RequestTimeoutError")})]
    assert failed.count == 1


def test_counters_and_limiter_wait(tel: Telemetry) -> None:
    hooks = tel.hooks
    for wait in (0.0, 0.0, 0.4):
        hooks.attempt_end(tel.start(wait=wait), duration=0.01, status=200, result_code=1)
    hooks.retry(
        endpoint="app_info", app_id="ks_a", attempt=1, delay=0.2, error=RequestTimeoutError("x")
    )
    hooks.retry(
        endpoint="app_info", app_id="ks_b", attempt=2, delay=0.4, error=RequestTimeoutError("x")
    )
    hooks.throttle(
        endpoint="app_info", app_id="ks_a", attempt=1, result_code=400002, learned_rate=210.0
    )
    hooks.throttle(endpoint="server_domain", app_id="ks_b", attempt=1, result_code=400002)
    for app in ("ks_a", "ks_b"):
        hooks.call_end(endpoint="app_info", method="GET", app_id=app, attempts=1, duration=0.1)
    hooks.call_end(
        endpoint="app_info",
        method="GET",
        app_id="ks_c",
        attempts=4,
        duration=3.0,
        error=RateLimitedError("x", code=400002),
    )
    found = tel.metrics()
    retries = points(found, "kuaishou_mp.client.retries")
    assert {k: p.value for k, p in retries.items()} == {
        frozenset({("kuaishou.endpoint", "app_info"), ("error.type", "RequestTimeoutError")}): 2
    }
    throttled = points(found, "kuaishou_mp.client.throttled")
    assert sorted(p.value for p in throttled.values()) == [1, 1]
    calls = points(found, "kuaishou_mp.client.calls")
    assert {k: p.value for k, p in calls.items()} == {
        frozenset({("kuaishou.endpoint", "app_info"), ("kuaishou.outcome", "ok")}): 2,
        frozenset({("kuaishou.endpoint", "app_info"), ("kuaishou.outcome", "throttled")}): 1,
    }
    (wait,) = found["kuaishou_mp.limiter.wait"]
    assert (wait.count, wait.sum, wait.bucket_counts[0]) == (3, pytest.approx(0.4), 2)
    (rate,) = found["kuaishou_mp.ratelimit.learned_rate"]
    assert rate.value == 210.0
    # App ids are for spans: no metric attribute holds one.
    for name, data in found.items():
        for point in data:
            assert not any(str(v).startswith("ks_") for v in point.attributes.values()), name


def test_learned_rate_from_attempts_and_circuit_state(tel: Telemetry) -> None:
    assert "kuaishou_mp.ratelimit.learned_rate" not in tel.metrics()
    assert "kuaishou_mp.circuit.state" not in tel.metrics()
    event = tel.hooks.attempt_start(
        endpoint="app_info",
        method="GET",
        url=redact_url(RAW_URL),
        app_id="ks_a",
        attempt=1,
        learned_rate=150.5,
    )
    assert event is not None
    tel.hooks.attempt_end(event, duration=0.01, status=200, result_code=1)
    tel.hooks.circuit_change("open", "closed")
    found = tel.metrics()
    assert [p.value for p in found["kuaishou_mp.ratelimit.learned_rate"]] == [150.5]
    states = {
        p.attributes["kuaishou.circuit.state"]: p.value for p in found["kuaishou_mp.circuit.state"]
    }
    assert states == {"closed": 0, "half_open": 0, "open": 1}
    tel.hooks.circuit_change("half_open", "open")
    states = {
        p.attributes["kuaishou.circuit.state"]: p.value
        for p in tel.metrics()["kuaishou_mp.circuit.state"]
    }
    assert states == {"closed": 0, "half_open": 1, "open": 0}


def test_bulk_counts(tel: Telemetry) -> None:
    def progress(run: int, in_flight: int, ok: int, failed: int, finished: bool = False) -> None:
        tel.hooks.bulk_progress(
            BulkProgressEvent(run, "app_info", in_flight, ok + failed, ok, failed, finished)
        )

    progress(1, 10, 0, 0)
    progress(2, 5, 3, 1)
    found = tel.metrics()
    assert [p.value for p in found["kuaishou_mp.bulk.in_flight"]] == [15]
    done = {p.attributes["kuaishou.outcome"]: p.value for p in found["kuaishou_mp.bulk.done"]}
    assert done == {"ok": 3, "failed": 1}
    progress(1, 0, 18, 2, finished=True)
    progress(2, 2, 7, 1)
    found = tel.metrics()
    assert [p.value for p in found["kuaishou_mp.bulk.in_flight"]] == [2]
    done = {p.attributes["kuaishou.outcome"]: p.value for p in found["kuaishou_mp.bulk.done"]}
    assert done == {"ok": 25, "failed": 3}


def test_the_canary_is_in_no_span_or_metric(tel: Telemetry) -> None:
    # Every event kind, with the raw token-bearing URL given to the redaction helper only.
    hooks = tel.hooks
    first = tel.start()
    hooks.attempt_end(first, duration=0.1, error=RateLimitedError("slow down", code=400002))
    hooks.retry(
        endpoint="app_info",
        app_id="ks_a",
        attempt=1,
        delay=0.1,
        error=RateLimitedError("x", code=400002),
    )
    hooks.throttle(
        endpoint="app_info", app_id="ks_a", attempt=1, result_code=400002, learned_rate=1.0
    )
    hooks.attempt_end(tel.start(attempt=2), duration=0.1, status=200, result_code=1)
    hooks.circuit_change("open", "closed")
    hooks.call_end(endpoint="app_info", method="GET", app_id="ks_a", attempts=2, duration=0.3)
    hooks.bulk_progress(BulkProgressEvent(1, "app_info", 0, 1, 1, 0, True))
    spans = tel.spans()
    assert len(spans) == 2
    assert leaks("\n".join(s.to_json() for s in spans)) == []
    assert all(not s.events for s in spans)
    data = tel.reader.get_metrics_data()
    assert data is not None
    assert leaks(data.to_json()) == []
    assert "REDACTED" in json.dumps([dict(s.attributes or {}) for s in spans])


def test_default_providers_are_the_global_ones() -> None:
    # Without providers the API's globals (no-op until an SDK is installed) are used.
    hooks = HookSet([OpenTelemetryHooks()])
    event = hooks.attempt_start(
        endpoint="app_info", method="GET", url=redact_url(RAW_URL), app_id=None, attempt=1
    )
    end = hooks.attempt_end(event, duration=0.1, status=200, result_code=1)
    assert end is not None
    assert end.ok
