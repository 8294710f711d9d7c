"""Soak: 100,000 calls through one client; memory must stay flat. ``python -m benchmarks.soak``.

The fake platform runs in its own process (this module with ``--serve``), so the resident set
measured here is the client's alone. It keeps a trickle of transient faults queued (HTTP 503,
400002, malformed JSON) and has a few revoked tokens, so retries and failed calls are soaked
along with successes. Calls cycle over the authorizers and the three endpoints from a fixed
pool of worker tasks sharing one ``Client`` with default settings, except a short backoff.

Every ``--every`` calls it samples the RSS, the number of live Python objects, tasks, limiter
keys and pooled connections. It prints the series and whether memory stayed flat: growth
from the first sample after warm-up to the last under ``max(2 MiB, 5%)``. Writes
``benchmarks/results/soak-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import logging
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks._process import fake_process
from benchmarks._process import fake_process
from kuaishou_mp.testing import FakeKuaishou

RESULTS = Path(__file__).parent / "results"
REVOKED_EVERY = 200  # one authorizer in 200 has a revoked token: its calls fail (AuthError)


# -- the fake, in its own process ----------------------------------------------------------


def prepare(args: argparse.Namespace) -> FakeKuaishou:
    from kuaishou_mp.testing import FakeKuaishou

    fake = FakeKuaishou(record_requests=False, seed=11)
    apps = fake.add_authorizers(args.authorizers, prefix="soak")
    for app in apps[::REVOKED_EVERY]:
        fake.revoke_token(app.app_id)
    rows = [{"app_id": a.app_id, "access_token": a.access_token} for a in apps]
    Path(args.state).write_text(json.dumps(rows))
    return fake


async def keep_faults_coming(fake: FakeKuaishou, per_second: float) -> None:
    """Queue a transient fault for a random authorizer, ``per_second`` on average.

    Per authorizer, not on the global queue: a global fault goes to whoever calls next, so at
    the end of a run the last few calls would collect every fault queued meanwhile.
    """
    from kuaishou_mp.testing import Fault

    cycle = [Fault.http(503), Fault.result(400002), Fault.malformed()]
    app_ids = list(fake.authorizers)
    rng = random.Random(11)
    i = 0
    while True:
        await asyncio.sleep(rng.expovariate(per_second))
        fake.inject(rng.choice(app_ids), cycle[i % len(cycle)])
        i += 1


async def serve(fake: FakeKuaishou, faults_per_second: float) -> None:
    base_url = await fake.start("127.0.0.1", 0)
    feeder = asyncio.create_task(keep_faults_coming(fake, faults_per_second))
    print(f"READY {base_url}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    feeder.cancel()
    counters = dict(fake.counters)
    await fake.stop()
    print(json.dumps(counters), flush=True)


# -- the client ------------------------------------------------------------------------------


def rss_mib() -> float:
    """The current resident set size (Linux), else the peak."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def soak(
    base_url: str, rows: list[dict[str, str]], args: argparse.Namespace
) -> dict[str, Any]:
    import aiohttp

    from kuaishou_mp import Authorizer, Client, KuaishouError, RetryPolicy

    authorizers = [Authorizer(r["app_id"], r["access_token"]) for r in rows]
    outcomes: collections.Counter[str] = collections.Counter()
    samples: list[dict[str, Any]] = []
    done = 0  # calls started
    finished = 0
    started = time.monotonic()
    retry = RetryPolicy(backoff_base=0.01, backoff_max=0.1)
    client = Client("ks_component_test", base_url=base_url, retry=retry)

    def sample() -> None:
        gc.collect()
        connector = client.session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        limiter = client._pipeline.limiter
        samples.append(
            {
                "calls": finished,
                "seconds": round(time.monotonic() - started, 1),
                "rss_mib": round(rss_mib(), 2),
                "objects": len(gc.get_objects()),
                "tasks": len(asyncio.all_tasks()),
                "limiter_keys": len(limiter) if limiter is not None else 0,  # type: ignore[arg-type]
                "connections_in_use": len(connector._acquired),
                "connections_pooled": sum(len(c) for c in connector._conns.values()),
            }
        )

    async def worker() -> None:
        nonlocal done, finished
        while done < args.calls:
            i = done
            done += 1
            a = authorizers[i % len(authorizers)]
            try:
                kind = i % 10
                if kind < 8:
                    await client.app_info(a)
                elif kind == 8:
                    await client.server_domain(a, "get")
                else:
                    await client.webview_domain(a, "get")
                outcomes["ok"] += 1
            except KuaishouError as exc:
                outcomes[type(exc).__name__] += 1
            finished += 1
            if finished % args.every == 0:
                sample()

    async with client:
        sample()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.monotonic() - started
    return {
        "calls": args.calls,
        "authorizers": len(authorizers),
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 1),
        "calls_per_s": round(args.calls / elapsed, 1),
        "outcomes": dict(outcomes.most_common()),
        "samples": samples,
    }


def verdict(samples: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    steady = [s for s in samples if s["calls"] >= warmup] or samples
    first, last = steady[0], steady[-1]
    growth = last["rss_mib"] - first["rss_mib"]
    allowed = max(2.0, 0.05 * first["rss_mib"])
    xs = [s["calls"] / 10_000 for s in steady]
    ys = [s["rss_mib"] for s in steady]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = (
        sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    )
    return {
        "from_calls": first["calls"],
        "rss_from_mib": first["rss_mib"],
        "rss_to_mib": last["rss_mib"],
        "rss_growth_mib": round(growth, 2),
        "rss_slope_mib_per_10k_calls": round(slope, 3),
        "objects_from": first["objects"],
        "objects_to": last["objects"],
        "allowed_growth_mib": round(allowed, 2),
        "flat": growth <= allowed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--authorizers", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--every", type=int, default=10_000, help="sample every N calls")
    parser.add_argument("--warmup", type=int, default=20_000, help="calls before the baseline")
    parser.add_argument("--faults-per-second", type=float, default=20.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("kuaishou_mp").addHandler(logging.NullHandler())
    if args.serve:
        asyncio.run(serve(prepare(args), args.faults_per_second))
        return
    with fake_process(
        "benchmarks.soak",
        "--authorizers",
        str(args.authorizers),
        "--faults-per-second",
        str(args.faults_per_second),
    ) as (base_url, rows, counters):
        report = asyncio.run(soak(base_url, rows, args))
    report["platform_saw"] = dict(sorted(counters.items()))
    report["verdict"] = verdict(report["samples"], args.warmup)
    report["started"] = time.strftime("%Y-%m-%dT%H:%M:%S")

    print(
        f"soak: {report['calls']:,} calls over {report['authorizers']:,} authorizers, "
        f"concurrency {report['concurrency']}, one client"
    )
    print(f"  {report['seconds']}s, {report['calls_per_s']:,}/s; outcomes {report['outcomes']}")
    print(f"  platform saw: {report['platform_saw']}")
    print("  calls     RSS MiB   objects   tasks  limiter keys  conns in use/pooled")
    for s in report["samples"]:
        print(
            f"  {s['calls']:>7,}  {s['rss_mib']:>8.2f}  {s['objects']:>8,}  {s['tasks']:>6}  "
            f"{s['limiter_keys']:>12,}  {s['connections_in_use']:>6}/{s['connections_pooled']}"
        )
    v = report["verdict"]
    print(
        f"  RSS from {v['from_calls']:,} calls on: {v['rss_from_mib']} -> {v['rss_to_mib']} MiB "
        f"(growth {v['rss_growth_mib']:+} MiB, slope {v['rss_slope_mib_per_10k_calls']:+} "
        f"MiB per 10k calls; allowed {v['allowed_growth_mib']}); objects "
        f"{v['objects_from']:,} -> {v['objects_to']:,}"
    )
    print(f"  memory flat: {'yes' if v['flat'] else 'NO'}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in (RESULTS / f"soak-{stamp}.json", RESULTS / "soak-latest.json"):
        path.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / 'soak-latest.json'}")
    if not v["flat"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
