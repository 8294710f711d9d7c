"""Hooks and OpenTelemetry through real calls against the fake: spans, metrics, events, logs.

Unlike ``test_otel.py`` (which feeds events by hand), every figure here comes from a client
making calls, so what is checked is what a service would export.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kuaishou_mp import (
    AttemptEnd,
    AttemptStart,
    Authorizer,
    BulkProgressEvent,
    CallEnd,
    Client,
    DomainNotFoundError,
    Hooks,
    InvalidInputError,
    RateLimitedError,
    RequestTimeoutError,
    RetryEvent,
    RetryPolicy,
    ThrottleEvent,
    Timeout,
    TransportError,
)
from kuaishou_mp.auth import AuthClient
from kuaishou_mp.otel import OpenTelemetryHooks
from kuaishou_mp.testing import FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import MakeClient

APP_INFO_PATH = "/openapi/mp/auth/app/info"
FAST = RetryPolicy(backoff_base=0.001, backoff_max=0.01)


class Telemetry:
    """An SDK tracer and meter provider recording in memory, and the hooks feeding them."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.hooks = OpenTelemetryHooks(self.tracer_provider, self.meter_provider)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def points(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        assert data is not None
        found: dict[str, list[Any]] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def total(self, name: str, **attributes: object) -> float:
        """Sum of a counter's (or a histogram's count of) points matching ``attributes``."""
        total = 0.0
        for point in self.points().get(name, []):
            if all(point.attributes.get(k) == v for k, v in attributes.items()):
                # A histogram's point has a count; a counter's or a gauge's a value.
                value = point.count if hasattr(point, "count") else point.value
                total += value
        return total


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


class Recorder(Hooks):
    """Every event, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def _keep(self, event: Any) -> None:
        self.events.append(event)

    on_attempt_start = on_attempt_end = on_retry = on_throttle = _keep
    on_circuit_change = on_call_end = on_bulk_progress = _keep

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


def auth(fake: FakeKuaishou, app_id: str = "ks_obs") -> Authorizer:
    a = fake.add_authorizer(app_id)
    return Authorizer(a.app_id, a.access_token)


def attrs_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# -- spans ------------------------------------------------------------------------------------


async def test_a_successful_call_is_one_client_span(
    kuaishou_fake: FakeKuaishou, tel: Telemetry, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    async with make_client(kuaishou_fake, hooks=[tel.hooks], retry=FAST) as client:
        await client.app_info(a)
    (span,) = tel.spans()
    assert span.name == f"GET {APP_INFO_PATH}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    host, port = kuaishou_fake.base_url.removeprefix("http://").split(":")
    assert attrs_of(span) == {
        "http.request.method": "GET",
        "server.address": host,
        "server.port": int(port),
        "url.full": (
            f"{kuaishou_fake.base_url}{APP_INFO_PATH}?component_app_id="
            f"{kuaishou_fake.component_app_id}&authorizer_access_token=REDACTED"
        ),
        "url.scheme": "http",
        "http.response.status_code": 200,
        "kuaishou.endpoint": "app_info",
        "kuaishou.app_id": a.app_id,
        "kuaishou.result_code": 1,
    }
    assert span.end_time is not None
    assert span.start_time is not None
    assert span.end_time > span.start_time


async def test_attempt_spans_are_children_of_the_callers_span(
    kuaishou_fake: FakeKuaishou, tel: Telemetry, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.http(503))
    tracer = tel.tracer_provider.get_tracer("test")
    async with make_client(kuaishou_fake, hooks=[tel.hooks], retry=FAST) as client:
        with tracer.start_as_current_span("GET /mini-programs/{app_id}") as parent:
            await client.app_info(a)
        await client.app_info(a)  # outside any span: a root span of its own trace
    *inside, request, outside = tel.spans()
    assert request.name == "GET /mini-programs/{app_id}"
    assert len(inside) == 2
    ctx = parent.get_span_context()
    for span in inside:
        assert span.parent is not None
        assert span.parent.span_id == ctx.span_id
        assert span.context is not None
        assert span.context.trace_id == ctx.trace_id
    assert outside.parent is None
    assert outside.context is not None
    assert outside.context.trace_id != ctx.trace_id


async def test_a_retried_call_has_a_span_per_attempt_with_resend_counts(
    kuaishou_fake: FakeKuaishou, tel: Telemetry, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.http(503), Fault.result(400002, "api限速"))
    async with make_client(kuaishou_fake, hooks=[tel.hooks], retry=FAST) as client:
        await client.app_info(a)
    gateway, throttled, ok = tel.spans()
    assert [attrs_of(s).get("http.request.resend_count") for s in (gateway, throttled, ok)] == [
        None,
        1,
        2,
    ]
    assert attrs_of(gateway)["http.response.status_code"] == 503
    assert attrs_of(gateway)["error.type"] == "TransportError"
    assert "kuaishou.result_code" not in attrs_of(gateway)
    assert gateway.status.status_code is StatusCode.ERROR
    assert attrs_of(throttled)["http.response.status_code"] == 200
    assert attrs_of(throttled)["kuaishou.result_code"] == 400002
    assert attrs_of(throttled)["error.type"] == "RateLimitedError"
    assert throttled.status.status_code is StatusCode.ERROR
    assert "error.type" not in attrs_of(ok)
    assert ok.status.status_code is StatusCode.UNSET
    # The spans follow one another: the gaps between them are the retry waits.
    assert gateway.end_time is not None
    assert throttled.start_time is not None
    assert gateway.end_time <= throttled.start_time
    assert tel.total("kuaishou_mp.client.retries", **{"error.type": "TransportError"}) == 1
    assert tel.total("kuaishou_mp.client.retries", **{"error.type": "RateLimitedError"}) == 1
    assert tel.total("kuaishou_mp.client.throttled", **{"kuaishou.result_code": 400002}) == 1
    assert tel.total("kuaishou_mp.client.calls", **{"kuaishou.outcome": "ok"}) == 1
    assert tel.total("http.client.request.duration") == 3 == kuaishou_fake.counters["requests"]


async def test_a_platform_error_ends_its_span_with_error(
    kuaishou_fake: FakeKuaishou, tel: Telemetry, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    async with make_client(kuaishou_fake, hooks=[tel.hooks], retry=FAST) as client:
        with pytest.raises(DomainNotFoundError):
            await client.webview_domain(a, "delete", webview=["absent.example.com"])
    (span,) = tel.spans()
    assert span.name == "POST /openapi/mp/auth/app/webview_domain"
    attributes = attrs_of(span)
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.response.status_code"] == 200
    assert attributes["kuaishou.result_code"] == 403106
    assert attributes["error.type"] == "DomainNotFoundError"
    assert span.status.status_code is StatusCode.ERROR
    assert tel.total("kuaishou_mp.client.calls", **{"kuaishou.outcome": "platform_error"}) == 1


async def test_a_timeout_ends_its_span_with_error_and_no_status(
    kuaishou_fake: FakeKuaishou, tel: Telemetry, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.hang(10))
    async with make_client(
        kuaishou_fake, hooks=[tel.hooks], retry=None, timeout=Timeout(total=0.2)
    ) as client:
        with pytest.raises(RequestTimeoutError):
            await client.app_info(a)
    (span,) = tel.spans()
    attributes = attrs_of(span)
    assert attributes["error.type"] == "RequestTimeoutError"
    assert "http.response.status_code" not in attributes
    assert "kuaishou.result_code" not in attributes
    assert span.status.status_code is StatusCode.ERROR
    assert tel.total("kuaishou_mp.client.calls", **{"kuaishou.outcome": "timeout"}) == 1
    assert tel.total("http.client.request.duration", **{"error.type": "RequestTimeoutError"}) == 1


async def test_a_transport_failure_ends_its_span_with_error(tel: Telemetry) -> None:
    # Nothing listens on port 9: the connection is refused.
    async with Client(
        "ks_c", base_url="http://127.0.0.1:9", retry=None, hooks=[tel.hooks]
    ) as client:
        with pytest.raises(TransportError):
            await client.app_info(Authorizer("ks_a", "tok_refused"))
    (span,) = tel.spans()
    attributes = attrs_of(span)
    assert attributes["error.type"] == "TransportError"
    assert attributes["server.port"] == 9
    assert "http.response.status_code" not in attributes
    assert span.status.status_code is StatusCode.ERROR
    assert tel.total("kuaishou_mp.client.calls", **{"kuaishou.outcome": "transport_error"}) == 1


async def test_a_bulk_run_records_metrics_matching_the_fakes_counts(
    kuaishou_fake: FakeKuaishou, tel: Telemetry, make_client: MakeClient
) -> None:
    authorizers = [auth(kuaishou_fake, f"ks_bulk_{i:02d}") for i in range(20)]
    kuaishou_fake.inject(authorizers[0].app_id, Fault.http(503))
    kuaishou_fake.inject(authorizers[1].app_id, Fault.result(400002), Fault.result(400002))
    kuaishou_fake.inject(authorizers[2].app_id, *[Fault.result(100200500)] * 4)  # fails
    tracer = tel.tracer_provider.get_tracer("nightly")
    async with make_client(kuaishou_fake, hooks=[tel.hooks], retry=FAST) as client:
        with tracer.start_as_current_span("nightly") as run_span:
            async with client.bulk_app_info(authorizers, concurrency=5) as run:
                results = [r async for r in run]
    assert sum(r.ok for r in results) == 19
    counters = kuaishou_fake.counters
    requests = counters["requests"]
    assert requests == 20 + 1 + 2 + 3
    assert tel.total("http.client.request.duration") == requests
    assert (
        tel.total("http.client.request.duration", **{"http.response.status_code": 503})
        == (counters["http:503"])
    )
    assert tel.total("kuaishou_mp.client.throttled") == counters["result:400002"] == 2
    assert tel.total("kuaishou_mp.client.retries") == requests - 20
    assert tel.total("kuaishou_mp.client.calls") == 20
    assert tel.total("kuaishou_mp.client.calls", **{"kuaishou.outcome": "ok"}) == 19
    assert tel.total("kuaishou_mp.client.calls", **{"kuaishou.outcome": "server_error"}) == 1
    assert tel.total("kuaishou_mp.bulk.done", **{"kuaishou.outcome": "ok"}) == 19
    assert tel.total("kuaishou_mp.bulk.done", **{"kuaishou.outcome": "failed"}) == 1
    assert tel.total("kuaishou_mp.bulk.in_flight") == 0
    assert tel.total("kuaishou_mp.limiter.wait") == requests
    attempts = [s for s in tel.spans() if s.name.startswith("GET ")]
    assert len(attempts) == requests
    ctx = run_span.get_span_context()
    assert all(s.parent is not None and s.parent.span_id == ctx.span_id for s in attempts)


# -- events ------------------------------------------------------------------------------------


async def test_events_of_a_retried_call_in_order(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    recorder = Recorder()
    kuaishou_fake.inject(a.app_id, Fault.http(503), Fault.result(400002))
    async with make_client(kuaishou_fake, hooks=[recorder], retry=FAST) as client:
        await client.app_info(a)
    kinds = [type(e).__name__ for e in recorder.events]
    assert kinds == [
        "AttemptStart",
        "AttemptEnd",
        "RetryEvent",
        "AttemptStart",
        "AttemptEnd",
        "ThrottleEvent",
        "RetryEvent",
        "AttemptStart",
        "AttemptEnd",
        "CallEnd",
    ]
    starts: list[AttemptStart] = recorder.of(AttemptStart)
    ends: list[AttemptEnd] = recorder.of(AttemptEnd)
    assert [e.start for e in ends] == starts
    assert all(e.start is s for e, s in zip(ends, starts, strict=True))
    assert [s.attempt for s in starts] == [1, 2, 3]
    assert [e.outcome for e in ends] == ["transport_error", "throttled", "ok"]
    assert [(e.status, e.result_code) for e in ends] == [(503, None), (200, 400002), (200, 1)]
    first, second = recorder.of(RetryEvent)
    assert (first.attempt, first.error_type, first.status) == (1, "TransportError", 503)
    assert (second.attempt, second.error_type, second.result_code) == (
        2,
        "RateLimitedError",
        400002,
    )
    assert 0 <= first.delay <= 0.01
    (throttle,) = recorder.of(ThrottleEvent)
    assert (throttle.app_id, throttle.attempt, throttle.result_code) == (a.app_id, 2, 400002)
    assert throttle.learned_rate is None  # nothing learns a component-wide rate yet
    (end,) = recorder.of(CallEnd)
    assert (end.endpoint, end.method, end.app_id, end.attempts) == ("app_info", "GET", a.app_id, 3)
    assert (end.outcome, end.error_type, end.result_code) == ("ok", None, 1)
    assert end.duration >= sum(e.duration for e in ends)


async def test_a_throttled_answer_is_reported_without_a_limiter(
    kuaishou_fake: FakeKuaishou,
    make_client: MakeClient,
) -> None:
    a = auth(kuaishou_fake)
    recorder = Recorder()
    kuaishou_fake.inject(a.app_id, Fault.result(400002))
    async with make_client(kuaishou_fake, hooks=[recorder], rate_limit=None, retry=None) as client:
        with pytest.raises(RateLimitedError):
            await client.app_info(a)
    (throttle,) = recorder.of(ThrottleEvent)
    assert throttle.result_code == 400002
    (end,) = recorder.of(CallEnd)
    assert end.outcome == "throttled"


async def test_one_call_end_per_logical_call_however_many_requests(
    kuaishou_fake: FakeKuaishou,
    make_client: MakeClient,
) -> None:
    """A delete confirmed by a get after a lost answer is one call: one CallEnd."""
    a = kuaishou_fake.add_authorizer("ks_del", webview_domains=["a.com", "b.com"])
    recorder = Recorder()
    kuaishou_fake.inject(a.app_id, Fault.drop_after_applying())
    async with make_client(kuaishou_fake, hooks=[recorder], retry=FAST) as client:
        after = await client.webview_domain(
            Authorizer(a.app_id, a.access_token), "delete", webview=["a.com"]
        )
    assert after.webview == ("b.com",)
    (end,) = recorder.of(CallEnd)
    assert end.attempts == kuaishou_fake.counters["requests"] == 3  # lost, 403106, get
    assert len(recorder.of(AttemptStart)) == 3
    assert end.outcome == "ok"


async def test_bulk_progress_events_count_the_run(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    authorizers = [auth(kuaishou_fake, f"ks_p{i}") for i in range(6)]
    recorder = Recorder()
    kuaishou_fake.inject(authorizers[0].app_id, *[Fault.result(100200500)] * 4)
    async with (
        make_client(kuaishou_fake, hooks=[recorder], retry=FAST) as client,
        client.bulk_app_info(authorizers, concurrency=3) as run,
    ):
        async for _ in run:
            pass
    progress: list[BulkProgressEvent] = recorder.of(BulkProgressEvent)
    assert len(progress) == 1 + 6 + 1  # started, each result, finished
    assert {p.run_id for p in progress} == {progress[0].run_id}
    assert {p.endpoint for p in progress} == {"app_info"}
    assert (progress[0].done, progress[0].finished) == (0, False)
    assert [p.done for p in progress[1:-1]] == [1, 2, 3, 4, 5, 6]
    assert all(p.ok + p.failed == p.done for p in progress)
    assert max(p.in_flight for p in progress) >= 1
    last = progress[-1]
    assert (last.done, last.ok, last.failed, last.in_flight, last.finished) == (6, 5, 1, 0, True)
    assert len(recorder.of(CallEnd)) == 6


async def test_an_auth_client_reports_its_calls_with_secrets_redacted(
    kuaishou_fake: FakeKuaishou, tel: Telemetry
) -> None:
    recorder = Recorder()
    ticket = kuaishou_fake.oauth.push_ticket()
    secret = kuaishou_fake.oauth.component_app_secret
    async with AuthClient(
        kuaishou_fake.component_app_id,
        secret,
        base_url=kuaishou_fake.base_url,
        hooks=[tel.hooks, recorder],
    ) as auth_client:
        token = (await auth_client.component_access_token(ticket)).component_access_token
    (span,) = tel.spans()
    url = str(attrs_of(span)["url.full"])
    assert "component_app_secret=REDACTED" in url
    assert "component_verify_ticket=REDACTED" in url
    assert f"component_app_id={kuaishou_fake.component_app_id}" in url
    for hidden in (ticket, secret, token):
        assert hidden not in repr(recorder.events)
        assert hidden not in repr(attrs_of(span))
    (end,) = recorder.of(CallEnd)
    assert (end.endpoint, end.outcome) == ("component_access_token", "ok")


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [OpenTelemetryHooks(), [object()], "hooks", 42, [Hooks(), print]],
    ids=["a bare hook", "not a hook", "a string", "a number", "a function"],
)
async def test_hooks_that_are_not_hooks_are_refused(
    bad: Any, kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    with pytest.raises(InvalidInputError, match=r"kuaishou_mp\.Hooks"):
        Client("ks_c", hooks=bad)
    with pytest.raises(InvalidInputError, match=r"kuaishou_mp\.Hooks"):
        AuthClient("ks_c", "secret", hooks=bad)
    async with make_client(kuaishou_fake, retry=FAST) as client:
        with pytest.raises(InvalidInputError, match=r"kuaishou_mp\.Hooks"):
            client.with_options(hooks=bad)


async def test_with_options_replaces_or_keeps_the_hooks(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    first, second = Recorder(), Recorder()
    async with make_client(kuaishou_fake, hooks=[first], retry=FAST) as client:
        kept = client.with_options(timeout=3)
        replaced = client.with_options(hooks=[second])
        silent = client.with_options(hooks=None)
        for c in (client, kept, replaced, silent):
            await c.app_info(a)
    assert len(first.of(CallEnd)) == 2
    assert len(second.of(CallEnd)) == 1
    assert silent._pipeline.observer is None


def test_no_hooks_means_no_observer() -> None:
    assert Client("ks_c")._pipeline.observer is None
    assert Client("ks_c", hooks=[])._pipeline.observer is None
    assert AuthClient("ks_c", "secret")._pipeline.observer is None
    assert Client("ks_c", hooks=[Hooks()])._pipeline.observer is not None


async def test_a_raising_hook_is_logged_once_and_never_breaks_a_call(
    kuaishou_fake: FakeKuaishou,
    caplog: pytest.LogCaptureFixture,
    tel: Telemetry,
    make_client: MakeClient,
) -> None:
    class Broken(Hooks):
        def on_attempt_start(self, event: AttemptStart) -> None:
            raise RuntimeError("bug in a hook")

        def on_call_end(self, event: CallEnd) -> None:
            raise ValueError("another bug")

    a = auth(kuaishou_fake)
    recorder = Recorder()
    kuaishou_fake.inject(a.app_id, Fault.http(503))
    with caplog.at_level(logging.DEBUG, logger="kuaishou_mp"):
        async with make_client(
            kuaishou_fake, hooks=[Broken(), recorder, tel.hooks], retry=FAST
        ) as client:
            for _ in range(3):
                assert (await client.app_info(a)).app_name
    raised = [r for r in caplog.records if "raised; the call goes on" in r.getMessage()]
    warnings = [r for r in raised if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once for this hook, whatever it raised and however often
    assert "Broken.on_attempt_start" in warnings[0].getMessage()
    assert len(raised) == 4 + 3  # 4 attempts, 3 call ends
    assert all(r.levelno == logging.DEBUG for r in raised[1:])
    # The other hooks saw everything.
    assert len(recorder.of(AttemptEnd)) == 4
    assert len(tel.spans()) == 4


# -- logging -----------------------------------------------------------------------------------


async def test_per_call_log_records_carry_structured_fields(
    kuaishou_fake: FakeKuaishou, caplog: pytest.LogCaptureFixture, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.result(100200500))
    with caplog.at_level(logging.DEBUG, logger="kuaishou_mp"):
        async with make_client(kuaishou_fake, retry=FAST) as client:
            await client.app_info(a)
    ours = [r for r in caplog.records if r.name == "kuaishou_mp"]
    fields = [
        {k: v for k, v in vars(r).items() if k.startswith("kuaishou_")}
        for r in ours
        if hasattr(r, "kuaishou_endpoint")
    ]
    assert fields == [
        {  # the failed attempt
            "kuaishou_endpoint": "app_info",
            "kuaishou_app_id": a.app_id,
            "kuaishou_attempt": 1,
            "kuaishou_result_code": 100200500,
        },
        {  # the retry
            "kuaishou_endpoint": "app_info",
            "kuaishou_app_id": a.app_id,
            "kuaishou_attempt": 1,
            "kuaishou_result_code": 100200500,
        },
        {  # the successful attempt
            "kuaishou_endpoint": "app_info",
            "kuaishou_app_id": a.app_id,
            "kuaishou_attempt": 2,
            "kuaishou_result_code": 1,
        },
    ]
    assert all(r.levelno < logging.WARNING or "retrying" in r.getMessage() for r in ours)


async def test_a_learned_rate_source_fills_the_events_and_the_gauge(
    kuaishou_fake: FakeKuaishou, tel: Telemetry, make_client: MakeClient
) -> None:
    """The hook point for a component-wide rate learner: ``Observer.learned_rate``."""
    a = auth(kuaishou_fake)
    recorder = Recorder()
    rates = iter([40.0, 20.0, 25.0])
    kuaishou_fake.inject(a.app_id, Fault.result(400002))
    async with make_client(kuaishou_fake, hooks=[recorder, tel.hooks], retry=FAST) as client:
        observer = client._pipeline.observer
        assert observer is not None
        observer.learned_rate = lambda: next(rates)
        await client.app_info(a)
    # Read at the first attempt, after the throttled answer, at the second attempt.
    assert [s.learned_rate for s in recorder.of(AttemptStart)] == [40.0, 25.0]
    assert [t.learned_rate for t in recorder.of(ThrottleEvent)] == [20.0]
    (point,) = tel.points()["kuaishou_mp.ratelimit.learned_rate"]
    assert point.value == 25.0
