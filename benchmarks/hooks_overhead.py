"""Cost of hooks per attempt: ``python -m benchmarks.hooks_overhead`` (needs the ``test`` extra).

Calls the client's hook dispatcher exactly as the call pipeline does for a call that succeeds
at its first attempt (``attempt_start``, ``attempt_end``, ``call_end``), with no network, so the
figure is the hooks' own cost in microseconds per attempt:

* ``none``: no hooks; the pipeline only checks ``hooks.enabled`` and builds nothing;
* ``noop``: one plain ``Hooks()`` (its methods are not even called: nothing overrides them);
* ``noop-overridden``: a hook overriding every method with ``pass`` (events built and handed);
* ``otel``: ``OpenTelemetryHooks`` with the OpenTelemetry SDK recording: a span per attempt
  through a ``BatchSpanProcessor`` (export discarded) and every metric aggregated.

Prints a table and writes ``benchmarks/results/hooks_overhead.json``: median and best of 5
runs, taken round-robin.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from kuaishou_mp import AttemptEnd, AttemptStart, CallEnd, Hooks, RetryEvent
from kuaishou_mp._hookset import HookSet
from kuaishou_mp._scrub import redact_url
from kuaishou_mp.otel import OpenTelemetryHooks

RESULTS = Path(__file__).parent / "results" / "hooks_overhead.json"
URL = redact_url(
    "https://open.kuaishou.com/openapi/mp/auth/app/info?component_app_id=ks_c&access_token=t"
)


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Overridden(Hooks):
    def on_attempt_start(self, event: AttemptStart) -> None:
        pass

    def on_attempt_end(self, event: AttemptEnd) -> None:
        pass

    def on_retry(self, event: RetryEvent) -> None:
        pass

    def on_call_end(self, event: CallEnd) -> None:
        pass


def _one_call(hooks: HookSet) -> Callable[[], None]:
    def call() -> None:
        # What the pipeline does around one successful single-attempt call.
        if not hooks.enabled:
            return
        started = time.monotonic()
        event = hooks.attempt_start(
            endpoint="app_info", method="GET", url=URL, app_id="ks_app", attempt=1
        )
        hooks.attempt_end(event, duration=0.004, status=200, result_code=1)
        hooks.call_end(
            endpoint="app_info",
            method="GET",
            app_id="ks_app",
            attempts=1,
            duration=time.monotonic() - started,
        )

    return call


def _run(call: Callable[[], None], n: int) -> float:
    """Microseconds per call over ``n`` calls."""
    begun = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - begun) / n * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20000, help="calls per run")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_Discard(), max_queue_size=1 << 16))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    cases: dict[str, HookSet] = {
        "none": HookSet(),
        "noop": HookSet([Hooks()]),
        "noop-overridden": HookSet([_Overridden()]),
        "otel": HookSet([OpenTelemetryHooks(tracer_provider, meter_provider)]),
    }
    calls = {name: _one_call(hooks) for name, hooks in cases.items()}
    for call in calls.values():
        _run(call, min(args.n, 2000))  # warm-up
    # Round-robin, so a noisy moment on a shared machine hits every case alike.
    runs: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(args.repeats):
        for name, call in calls.items():
            runs[name].append(_run(call, args.n))
    tracer_provider.shutdown()
    meter_provider.shutdown()

    results: dict[str, Any] = {
        name: {"median": round(statistics.median(r), 3), "min": round(min(r), 3)}
        for name, r in runs.items()
    }
    base = results["none"]["median"]
    print(f"{'hooks':<18}{'median us':>12}{'min us':>10}{'over none':>12}")
    for name, r in results.items():
        print(f"{name:<18}{r['median']:>12.3f}{r['min']:>10.3f}{r['median'] - base:>12.3f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"unit": "us per attempt", "n": args.n, "repeats": args.repeats, **results}, indent=1
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
