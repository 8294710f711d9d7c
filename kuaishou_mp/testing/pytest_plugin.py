"""pytest fixtures for testing code that uses kuaishou-mp, registered automatically on install.

* ``kuaishou_fake``: a started :class:`~kuaishou_mp.testing.FakeKuaishou` on 127.0.0.1 at a free
  port, stopped after the test.
* ``kuaishou_client``: a :class:`~kuaishou_mp.Client` connected to it, with fast retries
  (:func:`fake_client` with a 5 s timeout).

Both need pytest-asyncio; without it this plugin defines nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from typing import Any

from .. import Client, RateLimit, RetryPolicy
from . import FakeKuaishou

__all__ = ["fake_client", "fast_retry_policy"]


def fast_retry_policy() -> RetryPolicy:
    """The default retry classes and attempts, with millisecond backoff for tests."""
    return RetryPolicy(backoff_base=0.001, backoff_max=0.005, deadline=30.0)


def fake_client(fake: FakeKuaishou, /, **options: Any) -> Client:
    """A :class:`~kuaishou_mp.Client` of ``fake`` with test defaults, which ``options`` override.

    The defaults: the fake's ``component_app_id`` and ``base_url`` (pass ``base_url`` for a
    fake served otherwise, e.g. behind TLS), :func:`fast_retry_policy`, and a per-authorizer
    rate of 1000 calls per second, so limiting stays on, as in production, without pacing
    tests that make many quick calls. Every other option is the client's own default. Close
    the client when done (``async with`` or ``await client.aclose()``).

    Args:
        fake: The fake platform the client calls.
        **options: Any keyword argument of :class:`~kuaishou_mp.Client`.

    Raises:
        kuaishou_mp.InvalidInputError: An option is malformed.
    """
    defaults: dict[str, Any] = {
        "retry": fast_retry_policy(),
        "rate_limit": RateLimit(per_authorizer_qps=1000),
    }
    if "base_url" not in options:  # a fake served otherwise has no base_url of its own
        defaults["base_url"] = fake.base_url
    return Client(fake.component_app_id, **{**defaults, **options})


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
        async with fake_client(kuaishou_fake, timeout=5.0) as client:
            yield client
