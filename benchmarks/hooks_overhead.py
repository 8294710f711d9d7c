"""Cost of hooks per attempt: ``python -m benchmarks.hooks_overhead`` (needs the ``test`` extra).

Calls the client's hook dispatcher exactly as the call pipeline does for a call that succeeds
at its first attempt (``attempt_start``, ``attempt_end``, ``call_end``), with no network, so the
figure is the hooks' own cost in microseconds per attempt:

* ``none``: no hooks; the pipeline only checks ``hooks.enabled`` and builds nothing;
* ``noop``: one plain ``Hooks()`` (its methods are not even called: nothing overrides them);
* ``noop-overridden``: a hook overriding every method with ``pass`` (events built and handed);
* ``otel``: ``OpenTelemetryHooks`` with the OpenTelemetry SDK recording: a span per attempt
  through a ``BatchSpanProcessor`` (export discarded) and every metric aggregated.

``--real`` measures the same four cases through real calls instead: a client process making
``bulk_app_info`` calls against the fake platform (its own process, loopback, no latency), the
figure being the client's CPU time per call; the difference to ``none`` is what the hooks cost.

Prints a table and writes ``benchmarks/results/hooks_overhead.json`` (``--real``:
``hooks_overhead_real.json``): median and best of the runs, taken round-robin.
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
RESULTS_REAL = RESULTS.with_name("hooks_overhead_real.json")
CASES = ("none", "noop", "noop-overridden", "otel")
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


def real_calls(n: int, repeats: int, concurrency: int) -> None:
    """The four cases through real calls against the fake; CPU µs per call of the client."""
    from benchmarks.__main__ import client_run, fake_server

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CASES}
    with fake_server(n, 0.0) as (url, path):
        for _ in range(repeats):
            for name in CASES:  # round-robin: a noisy moment hits every case alike
                runs[name].append(
                    client_run(url, path, mode="sdk", n=n, concurrency=concurrency, hooks=name)
                )
    results: dict[str, Any] = {}
    for name, r in runs.items():
        cpu = [x["cpu_us_per_call"] for x in r]
        tp = [x["throughput"] for x in r]
        results[name] = {
            "cpu_us_per_call_median": round(statistics.median(cpu), 2),
            "cpu_us_per_call_min": round(min(cpu), 2),
            "throughput_median": round(statistics.median(tp)),
        }
    base = results["none"]["cpu_us_per_call_median"]
    print(f"{'hooks':<18}{'cpu us/call':>12}{'min':>8}{'over none':>11}{'calls/s':>10}")
    for name, r in results.items():
        median = r["cpu_us_per_call_median"]
        print(
            f"{name:<18}{median:>12.1f}{r['cpu_us_per_call_min']:>8.1f}"
            f"{median - base:>11.1f}{r['throughput_median']:>10,}"
        )
    RESULTS_REAL.parent.mkdir(exist_ok=True)
    summary = {"unit": "client CPU us per call", "n": n, "repeats": repeats}
    summary["concurrency"] = concurrency
    RESULTS_REAL.write_text(json.dumps({**summary, **results}, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20000, help="calls per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--real", action="store_true", help="through real calls to the fake")
    parser.add_argument("--concurrency", type=int, default=100, help="with --real")
    args = parser.parse_args(argv)
    if args.real:
        real_calls(args.n, args.repeats, args.concurrency)
        return

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
