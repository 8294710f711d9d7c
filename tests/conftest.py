"""Fixtures shared by the test files.

The fake platform and client fixtures (``kuaishou_fake``, ``kuaishou_client``) come from
kuaishou_mp's own pytest plugin (a pytest11 entry point). ``make_client`` is here: the one
factory for clients of a fake with test options of their own. The Redis ones are here too: CI
provides a server through ``KUAISHOU_TEST_REDIS_URL``; elsewhere one is started if
``redis-server`` is on PATH, or the tests skip (fail under ``KUAISHOU_REQUIRE_REDIS=1``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Protocol, TypedDict

import aiohttp
import pytest
import pytest_asyncio
import redis.asyncio
from redis_support import REDIS_URL_ENV, SessionRedis, redis_server_binary, skip_or_fail

from kuaishou_mp import (
    APIError,
    Client,
    ConnectionLimits,
    Default,
    Hooks,
    Limiter,
    RateLimit,
    RetryPolicy,
    Timeout,
    TokenProvider,
)
from kuaishou_mp.testing import FakeKuaishou
from kuaishou_mp.testing.pytest_plugin import fast_retry_policy

if TYPE_CHECKING:
    from typing_extensions import Unpack


class ClientOptions(TypedDict, total=False):
    """The keyword arguments of :class:`~kuaishou_mp.Client`, for ``make_client``."""

    base_url: str
    session: aiohttp.ClientSession | None
    timeout: Timeout | float | None
    rate_limit: RateLimit | Limiter | Default | None
    retry: RetryPolicy | Default | None
    token_provider: TokenProvider | None
    error_codes: Mapping[int, type[APIError]] | None
    connection_limits: ConnectionLimits | None
    max_response_bytes: int
    verify_ssl: bool
    hooks: Iterable[Hooks] | None


class MakeClient(Protocol):
    """The type of the ``make_client`` fixture (import it under ``TYPE_CHECKING``)."""

    def __call__(self, fake: FakeKuaishou, /, **options: Unpack[ClientOptions]) -> Client: ...


def build_client(fake: FakeKuaishou, /, **options: Unpack[ClientOptions]) -> Client:
    """A client of ``fake`` with the test defaults, which ``options`` override.

    The defaults: ``base_url`` is the fake's (pass one for a fake served otherwise), retries
    back off for milliseconds (:func:`~kuaishou_mp.testing.pytest_plugin.fast_retry_policy`)
    and the per-authorizer rate is 1000 calls per second, so limiting stays on without pacing
    tests that make many quick calls. Prefer the ``make_client`` fixture, which also closes
    what it built.
    """
    defaults: ClientOptions = {
        "retry": fast_retry_policy(),
        "rate_limit": RateLimit(per_authorizer_qps=1000),
    }
    if "base_url" not in options:  # a fake served otherwise (test_tls's) has no base_url
        defaults["base_url"] = fake.base_url
    merged: ClientOptions = {**defaults, **options}
    return Client(fake.component_app_id, **merged)


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """``make_client(fake, **options)``: :func:`build_client`, closed at teardown.

    Every client it built that is still open when the test ends is closed (``aclose`` is
    idempotent), so a test that forgets to close one leaks no session or connector.
    """
    built: list[Client] = []

    def make(fake: FakeKuaishou, /, **options: Unpack[ClientOptions]) -> Client:
        client = build_client(fake, **options)
        built.append(client)
        return client

    yield make
    for client in built:
        if not client.closed:
            await client.aclose()


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
