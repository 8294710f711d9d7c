"""Chaos run with DEFAULT client settings: ``python -m benchmarks.chaos [--n 30000]``.

The long variant of ``tests/test_chaos.py``. The fake platform runs in its own process (this
module with ``--serve``) and gives each authorizer at most one fault, drawn at random with
issue #8's mix: 10% HTTP 5xx with HTML bodies, 3% dropped connections, 2% hangs past the
timeout, 5% rate limiting (400002), 1% malformed JSON, 1% permanently invalid tokens.

The client is ``Client(component_app_id, base_url=...)`` and nothing else: the default
10 s timeout, retry policy (4 attempts, 0.2 s base backoff, 60 s deadline) and rate limit
(5/s per authorizer, adaptive). It runs one bulk call over every authorizer and checks what
the test checks: every authorizer reported exactly once, every transient fault ridden out,
every invalid token reported as AuthError after one request, nothing left open. Prints the
figures and writes them to ``benchmarks/results/chaos-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks._process import fake_process
from benchmarks._process import fake_process
from kuaishou_mp.testing import FakeKuaishou

RESULTS = Path(__file__).parent / "results"
MIX = {
    "http_5xx": 0.10,
    "drop": 0.03,
    "hang": 0.02,
    "rate_limited": 0.05,
    "malformed_json": 0.01,
    "invalid_token": 0.01,
}
TRANSIENT = {"http_5xx", "drop", "hang", "rate_limited", "malformed_json"}


# -- the fake, in its own process ----------------------------------------------------------


def prepare(args: argparse.Namespace) -> FakeKuaishou:
    from kuaishou_mp.testing import FakeKuaishou

    fake = FakeKuaishou(record_requests=False, seed=args.seed)
    apps = fake.add_authorizers(args.n, prefix="chaos")
    kinds = fake.chaos(**MIX, seed=args.seed)
    rows = [{"app_id": a.app_id, "access_token": a.access_token} for a in apps]
    Path(args.state).write_text(json.dumps({"authorizers": rows, "kinds": kinds}))
    return fake


async def serve(fake: FakeKuaishou) -> None:
    base_url = await fake.start("127.0.0.1", 0)
    print(f"READY {base_url}", flush=True)
    # Serve until the parent closes our stdin, then report what the platform saw.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    counters = dict(fake.counters)
    await fake.stop()
    print(json.dumps(counters), flush=True)


# -- the client ------------------------------------------------------------------------------


async def run_client(base_url: str, state: dict[str, Any], concurrency: int) -> dict[str, Any]:
    import aiohttp

    from kuaishou_mp import AuthError, Authorizer, Client

    kinds: dict[str, str] = state["kinds"]
    authorizers = [Authorizer(r["app_id"], r["access_token"]) for r in state["authorizers"]]
    peak_tasks = 0
    outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    attempts: collections.Counter[int] = collections.Counter()
    attempts_by_kind: dict[str, collections.Counter[int]] = collections.defaultdict(
        collections.Counter
    )
    reported: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    started = time.monotonic()
    client = Client("ks_component_test", base_url=base_url)  # every setting a default
    async with client:
        connector = client.session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        async with client.bulk_app_info(authorizers, concurrency=concurrency) as run:
            async for r in run:
                peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
                kind = kinds.get(r.app_id, "none")
                reported[r.app_id] += 1
                attempts[r.attempts] += 1
                attempts_by_kind[kind][r.attempts] += 1
                outcome = "ok" if r.error is None else type(r.error).__name__
                outcomes[kind][outcome] += 1
                if kind == "invalid_token":
                    if not (type(r.error) is AuthError and r.attempts == 1):
                        problems.append(f"{r.app_id} {kind}: {r.error!r} ({r.attempts})")
                elif r.error is not None:
                    problems.append(f"{r.app_id} {kind}: {r.error!r} ({r.attempts})")
        summary = run.summary()
        in_use_before_close = len(connector._acquired)
    elapsed = time.monotonic() - started
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if set(reported) != {a.app_id for a in authorizers} or max(reported.values()) != 1:
        problems.append("not every authorizer was reported exactly once")
    return {
        "authorizers": len(authorizers),
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "throughput_per_s": round(len(authorizers) / elapsed, 1),
        "summary": str(summary),
        "faults_drawn": dict(collections.Counter(kinds.values()).most_common()),
        "outcomes_by_fault": {k: dict(v) for k, v in sorted(outcomes.items())},
        "attempts_histogram": dict(sorted(attempts.items())),
        "attempts_by_fault": {
            k: dict(sorted(v.items())) for k, v in sorted(attempts_by_kind.items())
        },
        "retries": sum((n - 1) * c for n, c in attempts.items()),
        "peak_tasks": peak_tasks,
        "connections_in_use_after_run": in_use_before_close,
        "connections_in_use_after_close": len(connector._acquired),
        "session_closed": client.closed and connector.closed,
        "tasks_left": len(left),
        "problems": problems[:20],
        "problem_count": len(problems),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30_000, help="authorizers")
    parser.add_argument("--concurrency", type=int, default=100, help="bulk concurrency")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Retries are counted in the report; one log line per retry would only slow the run.
    logging.getLogger("kuaishou_mp").addHandler(logging.NullHandler())
    if args.serve:
        asyncio.run(serve(prepare(args)))
        return
    with fake_process("benchmarks.chaos", "--n", str(args.n), "--seed", str(args.seed)) as (
        base_url,
        state,
        counters,
    ):
        report = asyncio.run(run_client(base_url, state, args.concurrency))
    report["platform_saw"] = dict(sorted(counters.items()))
    report["started"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    ok = report["problem_count"] == 0 and report["tasks_left"] == 0
    ok = ok and report["connections_in_use_after_close"] == 0 and report["session_closed"]
    report["verdict"] = "PASS" if ok else "FAIL"

    print(f"chaos run: {report['authorizers']:,} authorizers, default client settings")
    print(f"  {report['summary']}")
    print(
        f"  time {report['seconds']}s, {report['throughput_per_s']:,}/s, "
        f"peak tasks {report['peak_tasks']}, retries {report['retries']:,}"
    )
    print(f"  faults drawn: {report['faults_drawn']}")
    for kind, outcome in report["outcomes_by_fault"].items():
        print(f"  {kind:>15}: {outcome}  attempts {report['attempts_by_fault'][kind]}")
    print(f"  attempts histogram: {report['attempts_histogram']}")
    print(f"  platform saw: {report['platform_saw']}")
    print(
        f"  connections in use after close: {report['connections_in_use_after_close']}, "
        f"tasks left: {report['tasks_left']}, session closed: {report['session_closed']}"
    )
    for problem in report["problems"]:
        print(f"  PROBLEM {problem}")
    print(f"  verdict: {report['verdict']}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in (RESULTS / f"chaos-{stamp}.json", RESULTS / "chaos-latest.json"):
        path.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / 'chaos-latest.json'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
