"""Fixtures shared by the test files.

The fake platform and client fixtures (``kuaishou_fake``, ``kuaishou_client``) come from
kuaishou_mp's own pytest plugin (a pytest11 entry point). The Redis ones are here: CI provides a
server through ``KUAISHOU_TEST_REDIS_URL``; elsewhere one is started if ``redis-server`` is on
PATH, or the tests skip (fail under ``KUAISHOU_REQUIRE_REDIS=1``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio
from redis_support import REDIS_URL_ENV, SessionRedis, redis_server_binary, skip_or_fail


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The shared test Redis: from the environment, or a redis-server started for the session."""
    url = os.environ.get(REDIS_URL_ENV)
    if url:
        yield url
        return
    binary = redis_server_binary()
    if binary is None:
        skip_or_fail(f"no Redis: {REDIS_URL_ENV} is unset and redis-server is not on PATH")
        return
    server = SessionRedis(binary)
    try:
        yield server.url
    finally:
        server.stop()


@pytest_asyncio.fixture
async def rdb(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A raw client on the shared test Redis, to inspect what the limiter stored."""
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=5)
    try:
        await client.ping()
    except Exception as exc:  # a configured but dead Redis must not pass silently
        await client.aclose()
        pytest.fail(f"{REDIS_URL_ENV} does not answer: {exc!r}")
    yield client
    await client.aclose()
