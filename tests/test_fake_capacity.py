"""The fake platform's component-wide rate limit and outage switch, over loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import pytest

from kuaishou_mp import Authorizer, RetryPolicy, TransportError
from kuaishou_mp.testing import APP_INFO_PATH, FakeAuthorizer, FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import MakeClient, MakeFake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def info(session: aiohttp.ClientSession, fake: FakeKuaishou, app: FakeAuthorizer) -> object:
    params = {
        "component_app_id": fake.component_app_id,
        "authorizer_access_token": app.access_token,
    }
    async with session.get(fake.base_url + APP_INFO_PATH, params=params) as resp:
        if resp.content_type != "application/json":
            return resp.status
        return (await resp.json())["result"]


async def test_component_limit_throttles_all_authorizers_together(
    make_fake: MakeFake,
    session: aiohttp.ClientSession,
) -> None:
    fake = await make_fake(component_qps=4, qps_window=0.5)
    apps = fake.add_authorizers(6)
    # Every authorizer calls once: no per-app limit could explain the refusals.
    assert [await info(session, fake, a) for a in apps] == [1, 1, 1, 1, 400002, 400002]
    assert fake.counters["result:400002"] == 2
    await asyncio.sleep(0.55)
    assert await info(session, fake, apps[5]) == 1
    fake.component_qps = None
    assert [await info(session, fake, a) for a in apps] == [1] * 6


async def test_refused_requests_do_not_count_against_the_component_window(
    make_fake: MakeFake,
    session: aiohttp.ClientSession,
) -> None:
    fake = await make_fake(component_qps=2, qps_window=0.4)
    apps = fake.add_authorizers(3)
    assert [await info(session, fake, a) for a in apps] == [1, 1, 400002]
    await asyncio.sleep(0.2)
    assert await info(session, fake, apps[2]) == 400002
    await asyncio.sleep(0.25)  # the two admitted ones left the window; the refusals never counted
    assert [await info(session, fake, a) for a in apps[:2]] == [1, 1]


async def test_per_app_and_component_limits_both_apply(
    make_fake: MakeFake, session: aiohttp.ClientSession
) -> None:
    fake = await make_fake(component_qps=3, qps_limit=1)
    a, b, c, d = fake.add_authorizers(4)
    results = [await info(session, fake, x) for x in (a, a, b, c, d)]
    # a's second call is over its own limit and takes no component slot.
    assert results == [1, 400002, 1, 1, 400002]


async def test_outage_answers_every_call_with_the_fault_until_ended(
    make_fake: MakeFake,
    session: aiohttp.ClientSession,
) -> None:
    fake = await make_fake()
    apps = fake.add_authorizers(3)
    fake.inject(apps[0].app_id, Fault.result(400003))
    fake.outage = Fault.http(503)
    assert [await info(session, fake, a) for a in apps * 2] == [503] * 6
    assert fake.counters["http:503"] == 6
    fake.outage = None
    # The queued fault was not consumed by the outage.
    assert [await info(session, fake, a) for a in apps] == [400003, 1, 1]


async def test_a_client_sees_the_component_limit_as_rate_limited_errors(
    make_fake: MakeFake,
    make_client: MakeClient,
) -> None:
    fake = await make_fake(component_qps=3)
    apps = fake.add_authorizers(5)
    async with make_client(fake, retry=RetryPolicy.none()) as client:
        outcomes = await asyncio.gather(
            *(client.app_info(Authorizer(a.app_id, a.access_token)) for a in apps),
            return_exceptions=True,
        )
    kinds = sorted(type(o).__name__ for o in outcomes)
    assert kinds == ["AppInfo"] * 3 + ["RateLimitedError"] * 2
    fake.outage = Fault.http(503)
    async with make_client(fake, retry=RetryPolicy.none()) as client:
        with pytest.raises(TransportError) as caught:
            await client.app_info(Authorizer(apps[0].app_id, apps[0].access_token))
    assert caught.value.status == 503
