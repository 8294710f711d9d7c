"""pytest fixtures for testing code that uses kuaishou-mp, registered automatically on install.

* ``kuaishou_fake``: a started :class:`~kuaishou_mp.testing.FakeKuaishou` on 127.0.0.1 at a free
  port, stopped after the test.
* ``kuaishou_client``: a :class:`~kuaishou_mp.Client` connected to it, with fast retries.

Both need pytest-asyncio; without it this plugin defines nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator

from .. import Client, RateLimit, RetryPolicy
from . import FakeKuaishou

__all__ = ["fast_retry_policy"]


def fast_retry_policy() -> RetryPolicy:
    """The default retry classes and attempts, with millisecond backoff for tests."""
    return RetryPolicy(backoff_base=0.001, backoff_max=0.005, deadline=30.0)


if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def kuaishou_fake() -> AsyncIterator[FakeKuaishou]:
        """A running fake platform with no authorizers yet (add them with ``add_authorizer``)."""
        async with FakeKuaishou() as fake:
            yield fake

    @pytest_asyncio.fixture
    async def kuaishou_client(kuaishou_fake: FakeKuaishou) -> AsyncIterator[Client]:
        """A client for the ``kuaishou_fake`` platform, closed after the test."""
        async with Client(
            kuaishou_fake.component_app_id,
            base_url=kuaishou_fake.base_url,
            retry=fast_retry_policy(),
            # Limiting stays on, as in production, but high: tests make many quick calls.
            rate_limit=RateLimit(per_authorizer_qps=1000),
            timeout=5.0,
        ) as client:
            yield client
