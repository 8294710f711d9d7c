"""Run the fake platform in its own process for the benchmarks.

Prints ``READY <base_url>`` on stdout once listening and writes the authorizers as JSON Lines;
stops when its standard input closes, so it never outlives the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from kuaishou_mp.testing import FakeKuaishou


def prepare(args: argparse.Namespace) -> FakeKuaishou:
    fake = FakeKuaishou(latency=args.latency, record_requests=False, seed=7)
    authorizers = fake.add_authorizers(args.authorizers, prefix="bench")
    lines = (json.dumps({"app_id": a.app_id, "access_token": a.access_token}) for a in authorizers)
    Path(args.authorizers_file).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return fake


async def serve(fake: FakeKuaishou) -> None:
    base_url = await fake.start("127.0.0.1", 0)
    print(f"READY {base_url}", flush=True)
    loop = asyncio.get_running_loop()
    # Stop when the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--authorizers", type=int, required=True)
    parser.add_argument("--authorizers-file", required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    fake = prepare(parser.parse_args())
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(fake))
    else:
        # The server runs on the fastest loop available in every scenario, so that it is the
        # same for the SDK and the baseline and is the bottleneck as little as possible.
        uvloop.run(serve(fake))


if __name__ == "__main__":
    main()
