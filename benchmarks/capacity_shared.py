"""Issue 16's shared scenario: three processes, one ``RedisLimiter``, one platform limit.

``python -m benchmarks.capacity_shared`` starts a redis-server, a fake platform with an
unpublished component-wide limit L = 300 calls/s (in its own process, as
``benchmarks.capacity`` does) and three client processes. The 6,000 authorizers are split in
three shards; each process runs ``bulk_app_info`` over its shard at concurrency 67 (200
together) with the default client and ``rate_limit=RedisLimiter.from_url(url, RateLimit(),
...)``; the three start at the same moment. Reported, combined: authorizers failed, ok
throughput / L (all ok answers over the slowest process's time), share of requests
throttled, requests per authorizer (targets: 0 failed, >= 0.92 L, <= 5% throttled). Writes
``benchmarks/results/capacity-shared-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._process import fake_process
from benchmarks.bench_redis_limiter import own_redis_server
from benchmarks.capacity import RESULTS, run_client

PROCESSES = 3
N = 6000
CONCURRENCY = 200
LIMIT = 300


def child(args: argparse.Namespace) -> None:
    from kuaishou_mp import RateLimit
    from kuaishou_mp.redis import RedisLimiter

    rows = json.loads(Path(args.state).read_text())["authorizers"][args.shard :: PROCESSES]
    limiter = RedisLimiter.from_url(
        args.redis_url, RateLimit(), component_app_id="ks_component_test"
    )
    time.sleep(max(0.0, args.start_at - time.time()))
    report = asyncio.run(
        run_client(args.base_url, {"authorizers": rows}, args.concurrency, rate_limit=limiter)
    )
    report.pop("timeline")
    print(json.dumps(report), flush=True)


def parent(latency: float) -> dict[str, Any]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("no redis-server on PATH")
    argv = ["--n", str(N), "--latency", str(latency), "--component-qps", str(LIMIT)]
    with (
        own_redis_server(binary) as redis_url,
        fake_process("benchmarks.capacity", *argv) as (base_url, state, counters),
        tempfile.TemporaryDirectory() as tmp,
    ):
        state_path = Path(tmp) / "state.json"
        state_path.write_text(json.dumps(state))
        start_at = time.time() + 3.0  # after every child has imported and connected
        children = [
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "benchmarks.capacity_shared", "--child"),
                    *("--state", str(state_path), "--shard", str(k)),
                    *("--base-url", base_url, "--redis-url", redis_url),
                    *("--concurrency", str(CONCURRENCY // PROCESSES)),
                    *("--start-at", repr(start_at)),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for k in range(PROCESSES)
        ]
        reports = [json.loads(c.communicate()[0].strip().splitlines()[-1]) for c in children]
    requests = counters.get("requests", 0)
    ok = sum(r["outcomes"].get("ok", 0) for r in reports)
    seconds = max(r["seconds"] for r in reports)
    return {
        "scenario": f"limit{LIMIT}x{PROCESSES}",
        "processes": PROCESSES,
        "authorizers": N,
        "concurrency": CONCURRENCY,
        "latency": latency,
        "component_qps": LIMIT,
        "failed": N - ok,
        "every_authorizer_once": all(r["every_authorizer_once"] for r in reports),
        "seconds": seconds,
        "ok_per_s": round(ok / seconds, 1),
        "ok_throughput_over_limit": round(ok / seconds / LIMIT, 3),
        "requests": requests,
        "requests_per_authorizer": round(requests / N, 3),
        "throttled_share": round(counters.get("result:400002", 0) / requests, 4),
        "platform_saw": dict(sorted(counters.items())),
        "per_process": reports,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.05, help="fake latency, seconds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--shard", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    report = parent(args.latency)
    print(
        f"{report['scenario']}: {N:,} authorizers over {PROCESSES} processes sharing a "
        f"RedisLimiter, concurrency {CONCURRENCY} together, default clients"
    )
    print(
        f"  failed {report['failed']:,}, every authorizer once: {report['every_authorizer_once']}"
    )
    print(
        f"  {report['seconds']} s, requests {report['requests']:,} "
        f"({report['requests_per_authorizer']} per authorizer), "
        f"throttled {report['throttled_share']:.1%}"
    )
    print(f"  ok throughput {report['ok_per_s']}/s = {report['ok_throughput_over_limit']} L")
    print(f"  platform saw {report['platform_saw']}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "capacity-shared-latest.json"
    out = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "scenarios": [report]}
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
