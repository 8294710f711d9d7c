"""Cost per acquire: the Redis-backed shared limiter next to the in-process one.

Every acquire uses a distinct authorizer key and the limits are never reached, so this measures
the limiter's own overhead (for Redis: one EVALSHA round trip), not waiting. Modes:

* ``sequential``: one task acquiring in a loop; the per-acquire latency (mean, p50, p99).
* ``concurrent``: ``--concurrency`` tasks acquiring at once; wall time divided by acquires,
  i.e. the amortised cost when a bulk run keeps many calls in flight.

A bare ``PING`` round trip is measured the same way as the baseline: on a loaded host the
absolute numbers move a lot, their ratio much less.

Usage::

    python benchmarks/bench_redis_limiter.py                  # starts its own redis-server
    python benchmarks/bench_redis_limiter.py --redis-url redis://127.0.0.1:6379/0

Prints a table and writes ``benchmarks/results/redis_limiter.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis.asyncio

from kuaishou_mp import InProcessLimiter, RateLimit
from kuaishou_mp.redis import RedisLimiter

RESULTS = Path(__file__).resolve().parent / "results" / "redis_limiter.json"
# High enough never to be reached: the benchmark measures overhead, not waiting.
PER_KEY = RateLimit(per_authorizer_qps=5.0)
WITH_GLOBAL = RateLimit(per_authorizer_qps=5.0, global_qps=1e9, global_burst=1_000_000)


@contextmanager
def own_redis_server(binary: str) -> Iterator[str]:
    """Run a throwaway redis-server on a free port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        proc = subprocess.Popen(
            [
                *(binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""),
                *("--appendonly", "no", "--dir", workdir, "--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


async def sequential(acquire: Callable[[str], Awaitable[None]], n: int) -> dict[str, float]:
    """Acquire ``n`` distinct keys one after another; latency statistics in microseconds."""
    tag = uuid.uuid4().hex[:8]
    samples = []
    clock = time.perf_counter
    for i in range(n):
        started = clock()
        await acquire(f"ks_{tag}_{i}")
        samples.append((clock() - started) * 1e6)
    samples.sort()
    return {
        "us_per_acquire": statistics.fmean(samples),
        "p50_us": samples[len(samples) // 2],
        "p99_us": samples[int(len(samples) * 0.99)],
    }


async def concurrent(
    acquire: Callable[[str], Awaitable[None]], n: int, concurrency: int
) -> dict[str, float]:
    """``concurrency`` tasks share ``n`` distinct-key acquires; amortised microseconds each."""
    tag = uuid.uuid4().hex[:8]
    per_task = n // concurrency

    async def worker(w: int) -> None:
        for i in range(per_task):
            await acquire(f"ks_{tag}_{w}_{i}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    done = per_task * concurrency
    return {"us_per_acquire": elapsed / done * 1e6, "acquires_per_s": done / elapsed}


async def bench(url: str, n: int, concurrency: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    # Baseline: the bare round trip every Redis acquire pays (same client settings).
    client = redis.asyncio.Redis.from_url(url, socket_timeout=0.5)
    try:

        async def ping(_: str) -> None:
            await client.ping()

        await sequential(ping, 200)
        rows.append(
            {"limiter": "PING (baseline)", "limits": "-", "mode": "sequential"}
            | await sequential(ping, n)
        )
        rows.append(
            {"limiter": "PING (baseline)", "limits": "-", "mode": "concurrent"}
            | await concurrent(ping, n, concurrency)
        )
    finally:
        await client.aclose()
    for config_name, rl in (("per-authorizer", PER_KEY), ("per-authorizer+global", WITH_GLOBAL)):
        local = InProcessLimiter(rl)
        await sequential(local.acquire, min(n, 2000))  # warm-up
        rows.append(
            {"limiter": "InProcessLimiter", "limits": config_name, "mode": "sequential"}
            | await sequential(local.acquire, n)
        )
        rows.append(
            {"limiter": "InProcessLimiter", "limits": config_name, "mode": "concurrent"}
            | await concurrent(local.acquire, n, concurrency)
        )
        shared = RedisLimiter.from_url(
            url, rl, component_app_id="bench", prefix=f"bench-{uuid.uuid4().hex[:8]}"
        )
        try:
            await sequential(shared.acquire, 200)  # connect, load the script
            rows.append(
                {"limiter": "RedisLimiter", "limits": config_name, "mode": "sequential"}
                | await sequential(shared.acquire, n)
            )
            rows.append(
                {"limiter": "RedisLimiter", "limits": config_name, "mode": "concurrent"}
                | await concurrent(shared.acquire, n, concurrency)
            )
            stats = shared.stats
            assert stats.fallback_acquires == 0, "Redis failed during the benchmark"
            assert stats.waits == 0, "a limit was reached"
        finally:
            await shared.aclose()
    return rows


async def server_version(url: str) -> str:
    client = redis.asyncio.Redis.from_url(url)
    try:
        info = await client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting redis-server")
    parser.add_argument("--redis-server", default=os.environ.get("KUAISHOU_TEST_REDIS_SERVER"))
    parser.add_argument("-n", "--acquires", type=int, default=5000)
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    async def run(url: str) -> tuple[list[dict[str, Any]], str]:
        return await bench(url, args.acquires, args.concurrency), await server_version(url)

    if args.redis_url:
        rows, version = asyncio.run(run(args.redis_url))
    else:
        binary = args.redis_server or shutil.which("redis-server")
        if binary is None:
            raise SystemExit("no redis-server on PATH: pass --redis-url or --redis-server")
        with own_redis_server(binary) as url:
            rows, version = asyncio.run(run(url))

    print(f"{'limiter':<17} {'limits':<22} {'mode':<11} {'us/acquire':>10} {'p50':>7} {'p99':>7}")
    for r in rows:
        p50 = f"{r['p50_us']:7.1f}" if "p50_us" in r else f"{'':>7}"
        p99 = f"{r['p99_us']:7.1f}" if "p99_us" in r else f"{'':>7}"
        print(
            f"{r['limiter']:<17} {r['limits']:<22} {r['mode']:<11} "
            f"{r['us_per_acquire']:10.2f} {p50} {p99}"
        )
    result = {
        "benchmark": "redis_limiter",
        "acquires": args.acquires,
        "concurrency": args.concurrency,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "redis_server": version,
        "redis_py": redis.__version__,
        "own_server": not args.redis_url,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
