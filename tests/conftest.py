"""Fixtures shared by the test files.

The fake platform and client fixtures (``kuaishou_fake``, ``kuaishou_client``) come from
kuaishou_mp's own pytest plugin (a pytest11 entry point). ``make_client`` and ``make_fake`` are
here: the one factory for clients of a fake with test options of their own (the plugin's
``fake_client`` defaults, closed at teardown), and the one for fakes with options of their own
(started, stopped at teardown). The Redis ones are here too: CI
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
from kuaishou_mp.testing.pytest_plugin import fake_client

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
    """A client of ``fake`` with the plugin's test defaults, which ``options`` override.

    :func:`~kuaishou_mp.testing.pytest_plugin.fake_client`, the defaults ``kuaishou_client``
    has too (the fake's ``base_url`` unless one is passed, millisecond retry backoff, 1000
    calls per second per authorizer), with the options typed. Prefer the ``make_client``
    fixture, which also closes what it built.
    """
    return fake_client(fake, **options)


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


class FakeOptions(TypedDict, total=False):
    """The keyword arguments of :class:`~kuaishou_mp.testing.FakeKuaishou`, for ``make_fake``."""

    component_app_id: str
    latency: float
    qps_limit: float | None
    record_requests: bool
    seed: int | None
    qps_window: float
    component_qps: float | None


class MakeFake(Protocol):
    """The type of the ``make_fake`` fixture (import it under ``TYPE_CHECKING``)."""

    async def __call__(self, **options: Unpack[FakeOptions]) -> FakeKuaishou: ...


@pytest_asyncio.fixture
async def make_fake() -> AsyncIterator[MakeFake]:
    """``await make_fake(**options)``: a started :class:`FakeKuaishou`, stopped at teardown.

    For a test that needs a fake with options of its own, or more than the one
    ``kuaishou_fake``. Every fake it started is stopped when the test ends (``stop`` is
    idempotent), after the clients ``make_client`` built are closed when ``make_fake`` is
    requested first.
    """
    started: list[FakeKuaishou] = []

    async def make(**options: Unpack[FakeOptions]) -> FakeKuaishou:
        fake = FakeKuaishou(**options)
        await fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in reversed(started):
        await fake.stop()


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
