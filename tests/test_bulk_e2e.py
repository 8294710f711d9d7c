"""Bulk runs and reconciliation through the client, against the fake platform."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from kuaishou_mp import (
    AppInfo,
    AuthError,
    Authorizer,
    BulkResult,
    DomainNotFoundError,
    InMemoryTokenProvider,
    InvalidInputError,
    ReconcileMode,
    RetryPolicy,
    ServerDomains,
    WebviewDomains,
)
from kuaishou_mp import _endpoints as endpoints_module
from kuaishou_mp.testing import FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import MakeClient

    from kuaishou_mp import Client


async def test_bulk_app_info_accounts_for_everyone_once(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    fakes = kuaishou_fake.add_authorizers(300)
    revoked = {fakes[i].app_id for i in (3, 50, 299)}
    for app_id in revoked:
        kuaishou_fake.revoke_token(app_id)
    for i in range(0, 300, 7):
        kuaishou_fake.inject(fakes[i].app_id, Fault.http(502))
    seen: list[BulkResult[AppInfo]] = []
    async with make_client(kuaishou_fake) as client:
        rows = (Authorizer(f.app_id, f.access_token) for f in fakes)
        async with client.bulk_app_info(rows, concurrency=20, on_result=seen.append) as run:
            results = [r async for r in run]
        summary = run.summary()
    assert sorted(r.app_id for r in results) == sorted(f.app_id for f in fakes)
    failed = {r.app_id for r in results if not r.ok}
    assert failed == revoked
    assert all(isinstance(r.error, AuthError) for r in results if not r.ok)
    assert all(r.value is not None and r.value.app_name for r in results if r.ok)
    retried = {r.app_id for r in results if r.attempts > 1}
    assert retried == {fakes[i].app_id for i in range(0, 300, 7)} - revoked
    assert len(seen) == 300
    assert (summary.total, summary.ok, summary.failed) == (300, 297, 3)
    assert dict(summary.errors_by_class) == {"AuthError": 3}


async def test_bulk_with_bare_app_ids_from_an_async_source(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    fakes = kuaishou_fake.add_authorizers(50)
    provider = InMemoryTokenProvider({f.app_id: f.access_token for f in fakes})

    async def source() -> AsyncIterator[str]:
        for f in fakes:
            await asyncio.sleep(0)
            yield f.app_id

    async with (
        make_client(kuaishou_fake, token_provider=provider) as client,
        client.bulk_webview_domain(source(), "add", webview=["new.example.com"]) as run,
    ):
        results = [r async for r in run]
    assert len(results) == 50
    assert all(r.ok and "new.example.com" in r.unwrap().webview for r in results)
    assert all("new.example.com" in f.webview_domains for f in fakes)


async def test_bulk_domain_input_is_checked_before_the_run(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    pulled: list[int] = []

    def source() -> Iterator[str]:
        pulled.append(1)
        yield "x"

    async with make_client(kuaishou_fake) as client:
        with pytest.raises(InvalidInputError):
            client.bulk_server_domain(source(), "add", request=["bad host"])
        with pytest.raises(InvalidInputError):
            client.bulk_server_domain(source(), "explode", request=["a.com"])
    assert pulled == []
    assert kuaishou_fake.requests == []


async def test_bulk_domain_lists_are_validated_once_for_the_whole_run(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = [kuaishou_fake.add_authorizer(f"ks_b{i}") for i in range(5)]
    authorizers = [Authorizer(f.app_id, f.access_token) for f in fakes]
    checked: list[str] = []
    real = endpoints_module.validate_domain

    def counting(domain: object, where: str) -> Any:
        checked.append(where)
        return real(domain, where)

    monkeypatch.setattr(endpoints_module, "validate_domain", counting)
    run = kuaishou_client.bulk_server_domain(
        authorizers, "add", request=["a.example.com", "b.example.com"]
    )
    results = [r async for r in run]
    assert len(results) == 5
    assert all(r.ok for r in results)
    assert checked == ["request[0]", "request[1]"]


async def test_bulk_delete_reports_403106_per_authorizer(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    fakes = kuaishou_fake.add_authorizers(10)
    for f in fakes[:4]:
        f.server_domains = {"request": ["old.example.com", "keep.example.com"]}
    async with make_client(kuaishou_fake) as client:
        rows = [Authorizer(f.app_id, f.access_token) for f in fakes]
        async with client.bulk_server_domain(rows, "delete", request=["old.example.com"]) as run:
            results = {r.app_id: r async for r in run}
    for f in fakes[:4]:
        assert results[f.app_id].unwrap().request == ("keep.example.com",)
    for f in fakes[4:]:
        assert isinstance(results[f.app_id].error, DomainNotFoundError)


async def test_reconcile_modes_and_idempotence(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    f = kuaishou_fake.add_authorizer("ks_rec", server_domains={"request": ["a.com", "b.com"]})
    a = Authorizer(f.app_id, f.access_token)
    async with make_client(kuaishou_fake) as client:
        ensure = await client.reconcile_server_domains(
            a, ServerDomains(request=["c.com"], udp=["u.com"]), "ensure"
        )
        assert ensure.changed
        assert ensure.before.request == ("a.com", "b.com")
        assert ensure.after is not None
        assert ensure.after.request == ("a.com", "b.com", "c.com")
        assert ensure.after.udp == ("u.com",)
        again = await client.reconcile_server_domains(
            a, ServerDomains(request=["c.com"], udp=["u.com"]), ReconcileMode.ENSURE
        )
        assert not again.changed
        assert again.plan.changes.empty

        dry = await client.reconcile_server_domains(
            a, ServerDomains(request=["a.com"]), "exact", dry_run=True
        )
        assert dry.after is None
        assert dry.plan.expected == ServerDomains(request=["a.com"])
        assert f.server_domains["request"] == ["a.com", "b.com", "c.com"]

        exact = await client.reconcile_server_domains(a, ServerDomains(request=["a.com"]), "exact")
        assert exact.after == ServerDomains(request=["a.com"])
        removed = await client.reconcile_webview_domains(
            a, WebviewDomains(webview=[f.webview_domains[0]]), "remove"
        )
        assert removed.after is not None
        assert f.webview_domains == list(removed.after.webview)
    actions = [r.body["action"] for r in kuaishou_fake.requests if r.body]
    # ensure: get + add; again: get; dry run: get; exact: get + set; remove: get + delete.
    assert actions == ["get", "add", "get", "get", "get", "set", "get", "delete"]


async def test_bulk_reconcile_partial_failure(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    fakes = kuaishou_fake.add_authorizers(40)
    kuaishou_fake.revoke_token(fakes[7].app_id)
    async with make_client(kuaishou_fake) as client:
        rows = [Authorizer(x.app_id, x.access_token) for x in fakes]
        desired = WebviewDomains(webview=["shared.example.com"])
        async with client.bulk_reconcile_webview_domains(rows, desired, "ensure") as run:
            first = {r.app_id: r async for r in run}
        async with client.bulk_reconcile_webview_domains(rows, desired, "ensure") as run:
            second = {r.app_id: r async for r in run}
    assert len(first) == len(second) == 40
    assert isinstance(first[fakes[7].app_id].error, AuthError)
    assert sum(r.ok and r.unwrap().changed for r in first.values()) == 39
    assert not any(r.ok and r.unwrap().changed for r in second.values())


async def test_bulk_reconcile_refuses_a_bad_goal(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    async with make_client(kuaishou_fake) as client:
        with pytest.raises(InvalidInputError):
            client.bulk_reconcile_server_domains([], WebviewDomains(), "ensure")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            await client.reconcile_webview_domains(
                "x", WebviewDomains(webview=["https://bad"]), "ensure"
            )


async def test_cancelling_during_backoff_is_not_retried(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    f = kuaishou_fake.add_authorizer("ks_c")
    # If the jittered wait happens to be short, the cancel lands in the hanging second attempt:
    # either way CancelledError must end the call at once, never be retried.
    kuaishou_fake.inject("ks_c", Fault.http(503), Fault.hang(30))

    async with make_client(
        kuaishou_fake, retry=RetryPolicy(backoff_base=5.0, backoff_max=5.0)
    ) as client:
        task = asyncio.create_task(client.app_info(Authorizer(f.app_id, f.access_token)))
        await asyncio.sleep(0.15)
        assert kuaishou_fake.requests
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1.0)
        await asyncio.sleep(0.1)
        assert len(kuaishou_fake.requests) <= 2
        # The client stays usable.
        kuaishou_fake.clear_faults("ks_c")
        assert (await client.app_info(Authorizer(f.app_id, f.access_token))).app_name
