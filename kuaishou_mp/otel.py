"""OpenTelemetry traces and metrics for every call, by the HTTP client semantic conventions.

Needs the ``otel`` extra (``pip install 'kuaishou-mp[otel]'``), which brings
``opentelemetry-api`` only: the application chooses and configures the SDK and exporters. The
core package never imports this module.

Traces: one ``CLIENT`` span per attempt, a child of the span current in the task that made
the call, named ``{method} {path}``. Metrics: ``http.client.request.duration`` by the
conventions, and the SDK's own under ``kuaishou_mp.`` (see the Observability page).

App ids are span attributes only, never metric attributes: a metric attribute with one value
per authorizer multiplies every time series by the number of authorizers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

try:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "kuaishou_mp.otel needs opentelemetry-api: pip install 'kuaishou-mp[otel]'"
    ) from exc

from . import __version__
from .hooks import (
    AttemptEnd,
    AttemptStart,
    BulkProgressEvent,
    CallEnd,
    CircuitChange,
    CircuitState,
    Hooks,
    RetryEvent,
    ThrottleEvent,
)

__all__ = ["DURATION_BUCKETS", "LIMITER_WAIT_BUCKETS", "OpenTelemetryHooks"]

DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
"""The HTTP semantic conventions' bucket boundaries for ``http.client.request.duration`` (s)."""

LIMITER_WAIT_BUCKETS: tuple[float, ...] = (0.0, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)
"""Bucket boundaries of ``kuaishou_mp.limiter.wait`` (s): most attempts wait not at all."""

_CIRCUIT_STATES: tuple[CircuitState, ...] = ("closed", "half_open", "open")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_TARGETS = 1024  # distinct redacted URLs remembered (one per base URL and endpoint)
_Attributes = Mapping[str, Any]


class _Target:
    """What a redacted URL says about the server, parsed once per URL."""

    __slots__ = ("metric", "path", "span")

    def __init__(self, url: str, method: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
        self.path = parts.path or "/"
        self.span: dict[str, Any] = {
            "http.request.method": method,
            "server.address": parts.hostname or "",
            "server.port": port,
            "url.full": url,
            "url.scheme": scheme,
        }
        # url.template is the conventions' opt-in attribute for a low-cardinality path:
        # our paths have no ids in them, so it gives latency per endpoint.
        self.metric: dict[str, Any] = {
            "http.request.method": method,
            "server.address": parts.hostname or "",
            "server.port": port,
            "url.template": self.path,
        }


class OpenTelemetryHooks(Hooks):
    """Hooks that record OpenTelemetry spans and metrics.

    Args:
        tracer_provider: Where spans go; the global tracer provider when ``None``.
        meter_provider: Where metrics go; the global meter provider when ``None``.

    One instance may serve several clients. Spans are started in
    :meth:`on_attempt_start` with the attempt's real start time and ended in
    :meth:`on_attempt_end` with its measured duration, matched by the identity of the
    :class:`~kuaishou_mp.hooks.AttemptStart` event, so concurrent attempts never mix.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer("kuaishou_mp", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("kuaishou_mp", __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._calls = meter.create_counter(
            "kuaishou_mp.client.calls",
            unit="{call}",
            description="Calls ended, by endpoint and outcome (retries not counted apart).",
        )
        self._retries = meter.create_counter(
            "kuaishou_mp.client.retries",
            unit="{retry}",
            description="Failed attempts that were retried, by endpoint and error type.",
        )
        self._throttled = meter.create_counter(
            "kuaishou_mp.client.throttled",
            unit="{answer}",
            description="Answers in which the platform said it was throttling.",
        )
        self._limiter_wait = meter.create_histogram(
            "kuaishou_mp.limiter.wait",
            unit="s",
            description="Time attempts waited for the client's rate limiter.",
            explicit_bucket_boundaries_advisory=LIMITER_WAIT_BUCKETS,
        )
        meter.create_observable_gauge(
            "kuaishou_mp.ratelimit.learned_rate",
            callbacks=[self._observe_rate],
            unit="{call}/s",
            description="The component-wide rate the client learned from throttling.",
        )
        meter.create_observable_gauge(
            "kuaishou_mp.circuit.state",
            callbacks=[self._observe_circuit],
            unit="1",
            description="1 for the outage circuit's current state, 0 for the others.",
        )
        meter.create_observable_up_down_counter(
            "kuaishou_mp.bulk.in_flight",
            callbacks=[self._observe_in_flight],
            unit="{call}",
            description="Calls under way in bulk runs.",
        )
        meter.create_observable_counter(
            "kuaishou_mp.bulk.done",
            callbacks=[self._observe_done],
            unit="{result}",
            description="Results handed out by bulk runs, by outcome (ok or failed).",
        )
        self._spans: dict[int, tuple[AttemptStart, trace.Span]] = {}
        self._targets: dict[tuple[str, str], _Target] = {}
        self._learned_rate: float | None = None
        self._circuit: CircuitState | None = None
        self._runs: dict[int, BulkProgressEvent] = {}
        self._finished_ok = 0
        self._finished_failed = 0
        # A metric reader collects in its own thread: a run moving from _runs to the finished
        # totals must not be seen in both or in neither (the counter would go back).
        self._runs_lock = threading.Lock()

    def _target(self, url: str, method: str) -> _Target:
        key = (url, method)
        target = self._targets.get(key)
        if target is None:
            target = _Target(url, method)
            if len(self._targets) < _MAX_TARGETS:
                self._targets[key] = target
        return target

    # -- hooks ---------------------------------------------------------------------------------

    def on_attempt_start(self, event: AttemptStart) -> None:
        """Start the attempt's CLIENT span and record the limiter wait."""
        target = self._target(event.url, event.method)
        attributes = dict(target.span)
        attributes["kuaishou.endpoint"] = event.endpoint
        if event.app_id is not None:
            attributes["kuaishou.app_id"] = event.app_id
        if event.attempt > 1:
            attributes["http.request.resend_count"] = event.attempt - 1
        if event.limiter_wait:
            attributes["kuaishou.limiter_wait"] = event.limiter_wait
        span = self._tracer.start_span(
            f"{event.method} {target.path}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=event.started_at_ns,
        )
        self._spans[id(event)] = (event, span)
        self._limiter_wait.record(event.limiter_wait, {"kuaishou.endpoint": event.endpoint})
        if event.learned_rate is not None:
            self._learned_rate = event.learned_rate

    def on_attempt_end(self, event: AttemptEnd) -> None:
        """End the attempt's span (status, codes, error type) and record its duration."""
        start = event.start
        target = self._target(start.url, start.method)
        metric = dict(target.metric)
        if event.status is not None:
            metric["http.response.status_code"] = event.status
        if event.error_type is not None:
            metric["error.type"] = event.error_type
        self._duration.record(event.duration, metric)
        entry = self._spans.pop(id(start), None)
        if entry is None or entry[0] is not start:
            if entry is not None:  # not ours: put it back
                self._spans[id(start)] = entry
            return
        span = entry[1]
        ended: dict[str, Any] = {}
        if event.status is not None:
            ended["http.response.status_code"] = event.status
        if event.result_code is not None:
            ended["kuaishou.result_code"] = event.result_code
        if event.error_type is not None:
            ended["error.type"] = event.error_type
            span.set_status(Status(StatusCode.ERROR, event.error_type))
        span.set_attributes(ended)
        span.end(end_time=start.started_at_ns + round(event.duration * 1e9))

    def on_retry(self, event: RetryEvent) -> None:
        """Count the retry."""
        self._retries.add(1, {"kuaishou.endpoint": event.endpoint, "error.type": event.error_type})

    def on_throttle(self, event: ThrottleEvent) -> None:
        """Count the throttled answer and note the learned rate."""
        self._throttled.add(
            1, {"kuaishou.endpoint": event.endpoint, "kuaishou.result_code": event.result_code}
        )
        if event.learned_rate is not None:
            self._learned_rate = event.learned_rate

    def on_circuit_change(self, event: CircuitChange) -> None:
        """Note the circuit's state for the ``kuaishou_mp.circuit.state`` gauge."""
        self._circuit = event.state

    def on_call_end(self, event: CallEnd) -> None:
        """Count the call by endpoint and outcome."""
        self._calls.add(1, {"kuaishou.endpoint": event.endpoint, "kuaishou.outcome": event.outcome})

    def on_bulk_progress(self, event: BulkProgressEvent) -> None:
        """Note the run's counters for the bulk gauges."""
        if event.finished:
            with self._runs_lock:
                self._runs.pop(event.run_id, None)
                self._finished_ok += event.ok
                self._finished_failed += event.failed
        else:
            self._runs[event.run_id] = event

    # -- observable instruments ---------------------------------------------------------------

    def _observe_rate(self, options: CallbackOptions) -> Iterable[Observation]:
        rate = self._learned_rate
        return () if rate is None else (Observation(rate),)

    def _observe_circuit(self, options: CallbackOptions) -> Iterable[Observation]:
        state = self._circuit
        if state is None:
            return ()
        return [
            Observation(int(s == state), {"kuaishou.circuit.state": s}) for s in _CIRCUIT_STATES
        ]

    def _observe_in_flight(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._runs_lock:
            runs = list(self._runs.values())
        return (Observation(sum(r.in_flight for r in runs)),)

    def _observe_done(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._runs_lock:
            runs = list(self._runs.values())
            ok, failed = self._finished_ok, self._finished_failed
        ok += sum(r.ok for r in runs)
        failed += sum(r.failed for r in runs)
        return (
            Observation(ok, {"kuaishou.outcome": "ok"}),
            Observation(failed, {"kuaishou.outcome": "failed"}),
        )
