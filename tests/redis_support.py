"""Helpers for the Redis limiter tests: real redis-server processes and a worker process.

Where Redis comes from: ``KUAISHOU_TEST_REDIS_URL`` (set by ``.ci/run``); otherwise a
``redis-server`` found on PATH (or named by ``KUAISHOU_TEST_REDIS_SERVER``) is started for the
session. Without either the tests skip, unless ``KUAISHOU_REQUIRE_REDIS=1``, which turns the
skip into a failure so CI cannot pass without running them.

Run as a script, this module is one worker of the multi-process test: it reads a JSON config
line on stdin, warms up, prints ``ready``, waits for a ``go`` line, makes its calls through a
``Client`` with a :class:`~kuaishou_mp.redis.RedisLimiter`, and prints a JSON summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import pytest

REDIS_URL_ENV = "KUAISHOU_TEST_REDIS_URL"
REDIS_SERVER_ENV = "KUAISHOU_TEST_REDIS_SERVER"
REQUIRE_ENV = "KUAISHOU_REQUIRE_REDIS"


def redis_required() -> bool:
    """Whether a missing Redis must fail the tests instead of skipping them."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it when ``KUAISHOU_REQUIRE_REDIS`` is set."""
    if redis_required():
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


def redis_server_binary() -> str | None:
    """Path of a redis-server binary, or ``None``."""
    named = os.environ.get(REDIS_SERVER_ENV)
    if named:
        return named if os.path.exists(named) else shutil.which(named)
    return shutil.which("redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def unique_prefix() -> str:
    """A key prefix no other test uses."""
    return f"kmptest-{uuid.uuid4().hex[:12]}"


def _server_args(binary: str, port: int, workdir: str) -> list[str]:
    return [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
        "--loglevel",
        "warning",
    ]


def _wait_listening(port: int, deadline: float) -> None:
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not listen on port {port}")
        time.sleep(0.02)


class SessionRedis:
    """A redis-server started for the whole test session (blocking API, for sync fixtures)."""

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="kmp-redis-")
        self._proc = subprocess.Popen(
            _server_args(binary, self.port, self._dir.name),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_listening(self.port, time.monotonic() + 10)
        except BaseException:
            self.stop()
            raise
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._dir.cleanup()


class RedisProcess:
    """A redis-server owned by one test, which can be stopped and started again on its port."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="kmp-redis-")
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        assert self._proc is None, "already running"
        self._proc = await asyncio.create_subprocess_exec(
            *_server_args(self.binary, self.port, self._dir.name),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    await self.stop()
                    raise RuntimeError("redis-server did not start") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) if it runs."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()

    async def close(self) -> None:
        """Stop the server and remove its directory."""
        await self.stop()
        self._dir.cleanup()


class BlackHole:
    """A TCP server that accepts connections and never answers: a hung Redis."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self) -> str:
        """Listen on a free port; returns a redis:// URL pointing at it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{self.port}/0"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Largest number of ``times`` inside any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    best = lo = 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# -- the worker of the multi-process test ------------------------------------------------------


async def _worker(cfg: dict[str, Any]) -> dict[str, Any]:
    import redis.asyncio

    from kuaishou_mp import Authorizer, Client, RateLimit, RetryPolicy
    from kuaishou_mp.redis import RedisLimiter

    authorizers = [Authorizer(app_id, token) for app_id, token in cfg["authorizers"]]
    n_calls = len(authorizers) * cfg["calls_per_app"]
    redis_client = redis.asyncio.Redis.from_url(
        cfg["redis_url"], socket_timeout=0.5, socket_connect_timeout=0.5
    )
    limiter = RedisLimiter(
        redis_client,
        RateLimit(per_authorizer_qps=cfg["rate"], burst=cfg["burst"]),
        component_app_id=cfg["component_app_id"],
        prefix=cfg["prefix"],
        owns_client=True,
        **({"safety_margin": cfg["safety_margin"]} if "safety_margin" in cfg else {}),
    )
    ok = 0
    errors: list[str] = []
    async with Client(
        cfg["component_app_id"],
        base_url=cfg["base_url"],
        rate_limit=limiter,
        retry=RetryPolicy.none(),
        timeout=10.0,
    ) as client:
        # Warm up before the start signal, as a long-running worker is: the HTTP session and
        # a connection to the fake (a call for this worker's own authorizer, which also loads
        # the script), and one Redis connection per concurrent call. Cold, a process's first
        # replies take tens of milliseconds (connection handshakes on a busy machine), and a
        # call admitted at once still leaves that late, bunching with the next ones; no
        # limiter can schedule around a delay that happens after its answer.
        await client.app_info(Authorizer(*cfg["warmup"]))
        await asyncio.gather(*(redis_client.ping() for _ in range(n_calls)))
        await _ready()
        calls = [client.app_info(a) for a in authorizers for _ in range(cfg["calls_per_app"])]
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, BaseException):
                errors.append(type(result).__name__)
            else:
                ok += 1
        stats = limiter.stats
    return {
        "ok": ok,
        "errors": errors,
        "redis_acquires": stats.redis_acquires,
        "fallback_acquires": stats.fallback_acquires,
    }


async def _ready() -> None:
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit("expected 'go'")


def worker_main() -> None:
    """Entry point of one worker process (see the module docstring)."""
    cfg = json.loads(sys.stdin.readline())
    print(json.dumps(asyncio.run(_worker(cfg))), flush=True)


if __name__ == "__main__":
    worker_main()
