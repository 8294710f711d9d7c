"""One measured client run, in its own process so RSS and CPU belong to it alone.

Modes: ``sdk`` (``Client.bulk_app_info``) or ``raw`` (plain aiohttp with the same worker pool
shape, the same JSON library, parsing into dicts). ``--hooks`` gives the SDK's client hooks
(``none``, a plain ``noop`` Hooks, ``noop-overridden``: every method overridden with ``pass``, or
``otel``: OpenTelemetryHooks with the SDK recording). Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any


def _authorizer_rows(path: str, n: int) -> Iterator[tuple[str, str]]:
    # Lazily: the memory benchmark streams from a generator, never a list.
    count = 0
    while count < n:
        with open(path, encoding="utf-8") as rows:
            for line in rows:
                row = json.loads(line)
                yield row["app_id"], row["access_token"]
                count += 1
                if count >= n:
                    return


async def _sample_tasks(peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], len(asyncio.all_tasks()))
        await asyncio.sleep(0.01)


def _hooks(kind: str) -> tuple[list[Any], Callable[[], None]]:
    """The client's hooks for ``--hooks kind``, and what shuts their providers down."""
    from kuaishou_mp import AttemptEnd, AttemptStart, CallEnd, Hooks, RetryEvent

    if kind == "none":
        return [], lambda: None
    if kind == "noop":
        return [Hooks()], lambda: None
    if kind == "noop-overridden":

        class Overridden(Hooks):
            def on_attempt_start(self, event: AttemptStart) -> None:
                pass

            def on_attempt_end(self, event: AttemptEnd) -> None:
                pass

            def on_retry(self, event: RetryEvent) -> None:
                pass

            def on_call_end(self, event: CallEnd) -> None:
                pass

        return [Overridden()], lambda: None
    from collections.abc import Sequence

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from kuaishou_mp.otel import OpenTelemetryHooks

    class Discard(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 16))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return [OpenTelemetryHooks(tracer_provider, meter_provider)], shutdown


async def run_sdk(args: argparse.Namespace) -> dict[str, Any]:
    from kuaishou_mp import Authorizer, Client, RateLimit

    rate_limit: RateLimit | None = RateLimit() if args.rate_limit == "on" else None
    rows = (Authorizer(a, t) for a, t in _authorizer_rows(args.authorizers_file, args.n))
    ok = 0
    hooks, shutdown = _hooks(args.hooks)
    client = Client("ks_component_test", base_url=args.base_url, rate_limit=rate_limit, hooks=hooks)
    async with client, client.bulk_app_info(rows, concurrency=args.concurrency) as run:
        async for result in run:
            ok += result.ok
    shutdown()
    return {"ok": ok}


async def run_raw(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    if args.json == "orjson":
        import orjson

        loads: Callable[[bytes], Any] = orjson.loads
    else:
        loads = json.loads
    rows = _authorizer_rows(args.authorizers_file, args.n)
    ok = 0
    url = f"{args.base_url}/openapi/mp/auth/app/info?component_app_id=ks_component_test"

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        for _, token in rows:
            async with session.get(f"{url}&authorizer_access_token={token}") as response:
                doc = loads(await response.read())
            ok += doc["result"] == 1

    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(args.concurrency)))
    return {"ok": ok}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    # Imports happen before the clock starts: the SDK imports more than aiohttp alone, and a
    # one-off import is not a per-call cost.
    import aiohttp  # noqa: F401

    if args.mode == "sdk":
        import kuaishou_mp  # noqa: F401
    peak = [0]
    sampler = asyncio.create_task(_sample_tasks(peak))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    out = await (run_sdk(args) if args.mode == "sdk" else run_raw(args))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    sampler.cancel()
    out.update(
        calls=args.n,
        seconds=wall,
        throughput=args.n / wall,
        cpu_us_per_call=cpu / args.n * 1e6,
        peak_tasks=peak[0],
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["sdk", "raw"], required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--authorizers-file", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rate-limit", choices=["on", "off"], default="on")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--json", choices=["std", "orjson"], default="std")
    parser.add_argument(
        "--hooks", choices=["none", "noop", "noop-overridden", "otel"], default="none"
    )
    args = parser.parse_args()
    if args.json == "std":
        # Hide orjson before the SDK imports, so both sides parse with the standard library.
        sys.modules["orjson"] = None  # type: ignore[assignment]
    if args.loop == "uvloop":
        import uvloop

        result = uvloop.run(measure(args))
    else:
        result = asyncio.run(measure(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
