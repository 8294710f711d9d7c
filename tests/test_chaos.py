"""Chaos: bulk runs over thousands of authorizers against a fake that misbehaves at random.

The mix is the one issue #8 names: 10% HTTP 5xx with HTML bodies, 3% dropped connections, 2%
hangs past the timeout, 5% rate limiting (400002), 1% malformed JSON, 1% permanently invalid
tokens. Every transient fault is queued once per authorizer, so the DEFAULT retry policy
(four attempts) must turn each into a success; the invalid tokens must fail with AuthError
after one request. The client, its session, its connections and every task must be gone at
the end, and the run must finish in bounded time.

The longer variant with default client settings is ``python -m benchmarks.chaos``.
"""

from __future__ import annotations

import collections
import math
import time
from typing import TYPE_CHECKING, Any

import pytest
from hardening_support import connector_of, in_use, no_other_tasks, pooled, recording_loop_errors

from kuaishou_mp import (
    AppInfo,
    AuthError,
    Authorizer,
    BulkResult,
    RetryPolicy,
    WebviewDomains,
)
from kuaishou_mp.testing import FakeKuaishou

if TYPE_CHECKING:
    from conftest import ClientOptions, MakeClient, MakeFake

MIX = {
    "http_5xx": 0.10,
    "drop": 0.03,
    "hang": 0.02,
    "rate_limited": 0.05,
    "malformed_json": 0.01,
    "invalid_token": 0.01,
}
TRANSIENT = {"http_5xx", "drop", "hang", "rate_limited", "malformed_json"}
# aiohttp itself resends an idempotent GET once after a dropped connection, so on app_info a
# drop may not cost the SDK an attempt; every other transient fault must have cost one.
RETRIED_ON_GET = TRANSIENT - {"drop"}
# Generous for a loaded CI machine (client and fake share one loop here); hangs still cost
# only about 200 x TIMEOUT / 100 in all.
TIMEOUT = 2.0


def chaos_options() -> ClientOptions:
    """Short timeout and backoff and the default number of attempts, for ``make_client`` (whose
    per-authorizer rate, 1000 per second, does not pace a single call)."""
    retry = RetryPolicy(backoff_base=0.01, backoff_max=0.1)
    assert retry.max_attempts == RetryPolicy().max_attempts == 4
    return {"timeout": TIMEOUT, "retry": retry}


def check_mix(kinds: dict[str, str], n: int) -> collections.Counter[str]:
    """The fake drew the mix we asked for (each count within 5 sigma of its expectation)."""
    counts = collections.Counter(kinds.values())
    for kind, p in MIX.items():
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts[kind] - n * p) < 5 * sigma, (kind, counts[kind])
    return counts


def check_outcomes(
    results: list[BulkResult[Any]],
    kinds: dict[str, str],
    app_ids: list[str],
    *,
    retried: set[str],
) -> collections.Counter[int]:
    """Every authorizer reported once; transient ones succeeded; invalid tokens AuthError."""
    reported = collections.Counter(r.app_id for r in results)
    assert len(results) == len(app_ids)
    assert set(reported) == set(app_ids)
    assert max(reported.values()) == 1
    failures: list[str] = []
    for r in results:
        kind = kinds.get(r.app_id)
        if kind == "invalid_token":
            # Permanent: reported with the right class, never retried.
            if not (type(r.error) is AuthError and r.error.code == 100200102 and r.attempts == 1):
                failures.append(f"{r.app_id} {kind}: {r.error!r} after {r.attempts}")
        elif r.error is not None:
            failures.append(f"{r.app_id} {kind}: {r.error!r} after {r.attempts} attempts")
        elif kind in retried and r.attempts < 2:
            failures.append(f"{r.app_id} {kind}: succeeded without the fault firing")
    assert failures == [], failures[:10]
    return collections.Counter(r.attempts for r in results)


async def test_chaos_bulk_app_info_over_10000_authorizers(make_client: MakeClient) -> None:
    n = 10_000
    with recording_loop_errors() as loop_errors:
        async with FakeKuaishou(record_requests=False, seed=8) as fake:
            apps = fake.add_authorizers(n)
            kinds = fake.chaos(**MIX, seed=20260808)
            counts = check_mix(kinds, n)
            authorizers = [Authorizer(a.app_id, a.access_token) for a in apps]
            started = time.monotonic()
            client = make_client(fake, **chaos_options())
            async with client:
                session = client.session
                connector = connector_of(client)
                results: list[BulkResult[AppInfo]] = []
                async with client.bulk_app_info(authorizers, concurrency=100) as run:
                    async for result in run:
                        results.append(result)
                assert in_use(connector) == 0
            elapsed = time.monotonic() - started
            summary = run.summary()
            # Closed: the session, the connector and every pooled connection with it.
            assert session.closed
            assert connector.closed
            assert in_use(connector) == pooled(connector) == 0
            histogram = check_outcomes(
                results, kinds, [a.app_id for a in apps], retried=RETRIED_ON_GET
            )
            # The values are the fake's documents, not something a fault left behind.
            for r in results[:: n // 100]:
                if r.value is not None:
                    assert r.value.app_name == fake.authorizer(r.app_id).info["app_name"]
            assert summary.total == n
            assert summary.failed == counts["invalid_token"]
            assert dict(summary.errors_by_class) == {"AuthError": counts["invalid_token"]}
            assert fake.counters["hang"] == counts["hang"]
            assert fake.counters["malformed"] == counts["malformed_json"]
        # The fake stopped too: nothing of either side may be left running.
        assert await no_other_tasks() == set()
    assert loop_errors.messages == []
    # Bounded: ~15 s on a laptop; hangs cost one TIMEOUT each, 100 at a time.
    assert elapsed < 45, f"chaos run took {elapsed:.1f}s ({histogram})"


async def test_chaos_bulk_domain_add_keeps_platform_state_exact(make_client: MakeClient) -> None:
    """The same mix on a mutation (POST: aiohttp resends nothing, every drop is the SDK's to
    retry). The domain ends up configured exactly once on every authorizer that succeeded and
    on none of the invalid ones."""
    n = 2_000
    domain = "chaos.example.com"
    with recording_loop_errors() as loop_errors:
        async with FakeKuaishou(record_requests=False, seed=9) as fake:
            apps = fake.add_authorizers(n)
            kinds = fake.chaos(**MIX, seed=88)
            before = {a.app_id: list(a.webview_domains) for a in apps}
            authorizers = [Authorizer(a.app_id, a.access_token) for a in apps]
            client = make_client(fake, **chaos_options())
            async with client:
                connector = connector_of(client)
                run = client.bulk_webview_domain(authorizers, "add", webview=[domain])
                async with run:
                    results: list[BulkResult[WebviewDomains]] = [r async for r in run]
            assert in_use(connector) == pooled(connector) == 0
            check_outcomes(results, kinds, [a.app_id for a in apps], retried=TRANSIENT)
            for r in results:
                state = fake.authorizer(r.app_id).webview_domains
                if r.ok:
                    assert r.value is not None
                    assert list(r.value.webview) == state == [*before[r.app_id], domain]
                else:
                    assert state == before[r.app_id]
        assert await no_other_tasks() == set()
    assert loop_errors.messages == []


@pytest.mark.parametrize("kind", sorted(TRANSIENT))
async def test_each_transient_kind_alone_is_ridden_out(
    make_fake: MakeFake, kind: str, make_client: MakeClient
) -> None:
    """Every transient kind on every authorizer at once still ends in success (and costs an
    attempt, except a drop on a GET, which aiohttp itself resends once)."""
    n = 60
    fake = await make_fake(record_requests=False)
    apps = fake.add_authorizers(n)
    kinds = fake.chaos(**{kind: 1.0}, seed=1)
    assert len(kinds) == n
    async with make_client(fake, **chaos_options()) as client:
        authorizers = [Authorizer(a.app_id, a.access_token) for a in apps]
        async with client.bulk_app_info(authorizers, concurrency=n) as run:
            results = [r async for r in run]
    histogram = check_outcomes(results, kinds, [a.app_id for a in apps], retried=RETRIED_ON_GET)
    if kind != "drop":
        assert histogram == {2: n}
