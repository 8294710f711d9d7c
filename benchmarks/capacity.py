"""Capacity scenarios with DEFAULT client settings: ``python -m benchmarks.capacity``.

Issue 16's scenarios, each against a fake platform in its own process (this module with
``--serve``):

* ``limit300`` / ``limit1000``: an unpublished component-wide limit L (the fake answers
  ``400002`` beyond L calls per second over all authorizers together); 6,000 authorizers,
  each called once by ``bulk_app_info`` at concurrency 200, so no per-authorizer slow-down can
  help. Reported: authorizers failed, ok throughput / L, share of requests throttled, requests
  per authorizer (targets: 0 failed, >= 0.92 L, <= 5% throttled).
* ``outage``: every call answers HTTP 503; 2,000 authorizers at concurrency 100. Reported:
  requests per authorizer and run duration (targets: <= 1.3 per authorizer, the run ends
  within ``max_outage`` + 10 s, every authorizer accounted once).
* ``outage15``: the ``limit300`` run, with every call answering HTTP 503 from 5 s to 20 s
  after the fake started; the bulk run waits the outage out (``on_outage="wait"``, the
  default). Reported: share of authorizers ok and requests per authorizer (targets: >= 99.5%
  ok, <= 1.3 per authorizer).

The ``limit*`` scenarios also record a timeline through the public hooks, drawn to
``docs/assets/learned-rate-<scenario>.svg``.

The client is ``Client(component_app_id, base_url=...)`` and nothing else. Log records the SDK
emits at WARNING or above are counted (a handler is attached so none are printed). Prints the
figures and writes ``benchmarks/results/capacity-latest.json`` (``--baseline``: also
``capacity-baseline.json``).
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

from benchmarks._process import fake_process
from benchmarks._timeline import svg

if TYPE_CHECKING:
    from kuaishou_mp.testing import FakeKuaishou

RESULTS = Path(__file__).parent / "results"
PLOTS = Path(__file__).parent.parent / "docs" / "assets"

SCENARIOS: dict[str, dict[str, Any]] = {
    "limit300": {"n": 6000, "concurrency": 200, "component_qps": 300, "outage": False},
    "limit1000": {"n": 6000, "concurrency": 200, "component_qps": 1000, "outage": False},
    "outage": {"n": 2000, "concurrency": 100, "component_qps": None, "outage": True},
    # 15 s of 503s from 5 s into a run of ~20 s (L = 300): the run waits the outage out.
    "outage15": {
        "n": 6000,
        "concurrency": 200,
        "component_qps": 300,
        "outage": False,
        "outage_from": 5.0,
        "outage_for": 15.0,
    },
}


# -- the fake, in its own process ----------------------------------------------------------


def prepare(args: argparse.Namespace) -> FakeKuaishou:
    from kuaishou_mp.testing import FakeKuaishou, Fault

    fake = FakeKuaishou(
        latency=args.latency,
        record_requests=False,
        seed=16,
        component_qps=args.component_qps,
    )
    if args.outage:
        fake.outage = Fault.http(503)
    apps = fake.add_authorizers(args.n, prefix="cap")
    rows = [{"app_id": a.app_id, "access_token": a.access_token} for a in apps]
    Path(args.state).write_text(json.dumps({"authorizers": rows}))
    return fake


async def _outage(fake: FakeKuaishou, start: float, seconds: float) -> None:
    from kuaishou_mp.testing import Fault

    await asyncio.sleep(start)
    fake.outage = Fault.http(503)
    await asyncio.sleep(seconds)
    fake.outage = None


async def serve(fake: FakeKuaishou, args: argparse.Namespace) -> None:
    base_url = await fake.start("127.0.0.1", 0)
    if args.outage_for:
        outage = asyncio.create_task(_outage(fake, args.outage_from, args.outage_for))
    print(f"READY {base_url}", flush=True)
    # Serve until the parent closes our stdin, then report what the platform saw.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    counters = dict(fake.counters)
    if args.outage_for:
        outage.cancel()
    await fake.stop()
    print(json.dumps(counters), flush=True)


# -- the client ------------------------------------------------------------------------------


class _CountingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def run_client(
    base_url: str, state: dict[str, Any], concurrency: int, rate_limit: Any = None
) -> dict[str, Any]:
    """One default client's bulk app-info run over ``state``'s authorizers (``rate_limit``:
    a limiter to use instead of the default, e.g. a ``RedisLimiter``)."""
    from benchmarks._timeline import Timeline
    from kuaishou_mp import DEFAULT, Authorizer, Client

    authorizers = [Authorizer(r["app_id"], r["access_token"]) for r in state["authorizers"]]
    outcomes: collections.Counter[str] = collections.Counter()
    attempts: collections.Counter[int] = collections.Counter()
    reported: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    # Every setting a default; the timeline only listens (a few µs per attempt).
    timeline = Timeline()
    client = Client(
        "ks_component_test",
        base_url=base_url,
        hooks=[timeline],
        rate_limit=DEFAULT if rate_limit is None else rate_limit,
    )
    async with client, client.bulk_app_info(authorizers, concurrency=concurrency) as run:
        async for r in run:
            reported[r.app_id] += 1
            attempts[r.attempts] += 1
            outcomes["ok" if r.error is None else type(r.error).__name__] += 1
    elapsed = time.monotonic() - started
    every_once = set(reported) == {a.app_id for a in authorizers} and max(reported.values()) == 1
    return {
        "authorizers": len(authorizers),
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "outcomes": dict(outcomes.most_common()),
        "failed": len(authorizers) - outcomes["ok"],
        "attempts_histogram": dict(sorted(attempts.items())),
        "every_authorizer_once": every_once,
        "ok_per_s": round(outcomes["ok"] / elapsed, 1),
        "timeline": timeline.series(),
    }


def run_scenario(name: str, latency: float) -> dict[str, Any]:
    spec = SCENARIOS[name]
    argv = ["--n", str(spec["n"]), "--latency", str(latency)]
    if spec["component_qps"] is not None:
        argv += ["--component-qps", str(spec["component_qps"])]
    if spec["outage"]:
        argv.append("--outage")
    if "outage_for" in spec:
        argv += ["--outage-from", str(spec["outage_from"]), "--outage-for", str(spec["outage_for"])]
    counter = _CountingHandler()
    sdk_logger = logging.getLogger("kuaishou_mp")
    sdk_logger.addHandler(counter)
    try:
        with fake_process("benchmarks.capacity", *argv) as (base_url, state, counters):
            report = asyncio.run(run_client(base_url, state, spec["concurrency"]))
    finally:
        sdk_logger.removeHandler(counter)
    requests = counters.get("requests", 0)
    n = spec["n"]
    report.update(
        scenario=name,
        latency=latency,
        component_qps=spec["component_qps"],
        outage=spec["outage"],
        platform_saw=dict(sorted(counters.items())),
        requests=requests,
        requests_per_authorizer=round(requests / n, 3),
        throttled_share=round(counters.get("result:400002", 0) / requests, 4) if requests else 0,
        warning_log_records=counter.count,
    )
    if "outage_for" in spec:
        report["outage_seconds"] = spec["outage_for"]
        report["ok_share"] = round(report["outcomes"].get("ok", 0) / n, 4)
    elif spec["component_qps"] is not None:
        report["ok_throughput_over_limit"] = round(report["ok_per_s"] / spec["component_qps"], 3)
    return report


def _print(report: dict[str, Any]) -> None:
    print(
        f"{report['scenario']}: {report['authorizers']:,} authorizers, "
        f"concurrency {report['concurrency']}, default client"
    )
    print(
        f"  outcomes {report['outcomes']}, failed {report['failed']:,}, "
        f"every authorizer once: {report['every_authorizer_once']}"
    )
    print(
        f"  {report['seconds']} s, requests {report['requests']:,} "
        f"({report['requests_per_authorizer']} per authorizer), "
        f"throttled {report['throttled_share']:.1%}"
    )
    if "ok_share" in report:
        print(f"  a {report['outage_seconds']:g} s outage mid-run: {report['ok_share']:.2%} ok")
    if "ok_throughput_over_limit" in report:
        print(f"  ok throughput {report['ok_per_s']}/s = {report['ok_throughput_over_limit']} L")
    print(
        f"  attempts {report['attempts_histogram']}, "
        f"WARNING log records {report['warning_log_records']:,}"
    )
    print(f"  platform saw {report['platform_saw']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--latency", type=float, default=0.05, help="fake latency, seconds")
    parser.add_argument("--baseline", action="store_true", help="also write capacity-baseline.json")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--component-qps", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--outage", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--outage-from", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--outage-for", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(prepare(args), args))
        return
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    reports = []
    for name in names:
        report = run_scenario(name, args.latency)
        _print(report)
        reports.append(report)
    out = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "scenarios": reports}
    RESULTS.mkdir(exist_ok=True)
    paths = [RESULTS / "capacity-latest.json"]
    if args.baseline:
        paths.append(RESULTS / "capacity-baseline.json")
    for path in paths:
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path}")
    for report in reports:
        if report["component_qps"] is None or "ok_share" in report:
            continue
        path = PLOTS / f"learned-rate-{report['scenario']}.svg"
        title = (
            f"{report['scenario']}: {report['authorizers']:,} authorizers, concurrency "
            f"{report['concurrency']}, default client"
        )
        path.write_text(svg(report["timeline"], report["component_qps"], title))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
