"""A discrete-event model of issue 16's bulk scenario: ``python -m benchmarks.capacity_model``.

No sockets, no asyncio: ``--n`` authorizers, each called once by ``--concurrency`` workers,
``--latency`` round trip, a platform admitting at most L calls in any sliding second across
all authorizers, and the client pacing every send at the learned component-wide rate
(``ComponentRate`` fed through ``ComponentThrottleDetector``). A throttled call goes back
through the pacing without spending an attempt, as issue 16 asks of the pipeline. It runs in
about a second, for tuning the calculators before (and apart from) wiring them; the figures
are the model's, not the SDK's: ``benchmarks.capacity`` measures the SDK.
"""

from __future__ import annotations

import argparse
import collections
import heapq
import math

from kuaishou_mp._component_rate import BETA, HOLDOFF, ComponentRate
from kuaishou_mp._throttle_detector import ComponentThrottleDetector


def simulate(
    limit: int,
    *,
    n: int = 6000,
    concurrency: int = 200,
    latency: float = 0.05,
    beta: float = BETA,
    holdoff: float = HOLDOFF,
) -> dict[str, float]:
    """Run the model once; return ok throughput / L, throttled share, requests per authorizer."""
    calc = ComponentRate(beta=beta, holdoff=holdoff)
    detector = ComponentThrottleDetector()
    admitted: collections.deque[float] = collections.deque()
    events: list[tuple[float, int, str, str, float]] = []  # (time, seq, kind, app, sent_at)
    pending = collections.deque(f"ks{i:08d}" for i in range(n))
    seq = 0
    next_slot = 0.0
    requests = throttled = ok = 0
    last_ok = 0.0

    def send_when_paced(now: float, app: str) -> None:
        nonlocal seq, next_slot
        at = now
        if math.isfinite(calc.rate):
            at = max(now, next_slot)
            next_slot = at + 1.0 / calc.rate
        seq += 1
        heapq.heappush(events, (at, seq, "send", app, at))

    for _ in range(concurrency):
        send_when_paced(0.0, pending.popleft())
    while events:
        now, _, kind, app, sent_at = heapq.heappop(events)
        if kind == "send":
            requests += 1
            calc.on_send(now)
            detector.on_send(app, now)
            arrival = now + latency / 2
            while admitted and admitted[0] <= arrival - 1.0:
                admitted.popleft()
            answer = "ok" if len(admitted) < limit else "throttled"
            if answer == "ok":
                admitted.append(arrival)
            seq += 1
            heapq.heappush(events, (now + latency, seq, answer, app, now))
        elif kind == "ok":
            ok += 1
            last_ok = now
            calc.on_success(now)
            if pending:
                send_when_paced(now, pending.popleft())
        else:
            throttled += 1
            if detector.on_throttle(app, now):
                calc.on_throttle(now, sent_at)
            send_when_paced(now, app)
    return {
        "ok_throughput_over_limit": ok / last_ok / limit,
        "throttled_share": throttled / requests,
        "requests_per_authorizer": requests / n,
        "seconds": last_ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, nargs="*", default=[300, 1000])
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--beta", type=float, default=BETA)
    parser.add_argument("--holdoff", type=float, default=HOLDOFF)
    args = parser.parse_args()
    for limit in args.limit:
        r = simulate(
            limit,
            n=args.n,
            concurrency=args.concurrency,
            latency=args.latency,
            beta=args.beta,
            holdoff=args.holdoff,
        )
        print(
            f"L={limit}/s: ok throughput {r['ok_throughput_over_limit']:.3f} L, "
            f"throttled {r['throttled_share']:.1%}, "
            f"{r['requests_per_authorizer']:.3f} requests per authorizer, {r['seconds']:.1f} s"
        )


if __name__ == "__main__":
    main()
