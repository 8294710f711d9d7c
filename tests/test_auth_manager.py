"""The token manager against the fake platform, with in-memory storage and a controlled clock."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from kuaishou_mp import (
    Client,
    InvalidInputError,
    RefreshTokenExpiredError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    TokenProvider,
    TokenUnavailableError,
)
from kuaishou_mp.auth import (
    AuthClient,
    AuthorizerTokens,
    InMemoryTokenStorage,
    LockTimeoutError,
    StoredToken,
    TokenManager,
    TokenStorage,
)
from kuaishou_mp.testing import FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import MakeClient

FAST = RetryPolicy(max_attempts=2, backoff_base=0.001, backoff_max=0.002, deadline=10.0)


class Clock:
    """A settable wall clock for the manager."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_manager(fake: FakeKuaishou, clock: Clock, **kwargs: object) -> TokenManager:
    auth = AuthClient(
        fake.component_app_id,
        fake.oauth.component_app_secret,
        base_url=fake.base_url,
        retry=kwargs.pop("retry", FAST),  # type: ignore[arg-type]
        timeout=5.0,
    )
    options: dict[str, object] = {"jitter": 0.0, "clock": clock, **kwargs}
    return TokenManager(auth, **options)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def manager(kuaishou_fake: FakeKuaishou, clock: Clock) -> AsyncIterator[TokenManager]:
    async with make_manager(kuaishou_fake, clock) as m:
        await m.set_ticket(kuaishou_fake.oauth.push_ticket())
        yield m


@pytest_asyncio.fixture
async def client(
    kuaishou_fake: FakeKuaishou, manager: TokenManager, make_client: MakeClient
) -> AsyncIterator[Client]:
    async with make_client(kuaishou_fake, token_provider=manager, retry=FAST, rate_limit=None) as c:
        yield c


# -- the component token ----------------------------------------------------------------------


async def test_component_token_is_renewed_before_it_expires(
    kuaishou_fake: FakeKuaishou, manager: TokenManager, clock: Clock
) -> None:
    oauth = kuaishou_fake.oauth
    first = await manager.get_component_token()
    assert await manager.get_component_token() == first
    assert oauth.component_tokens_issued == 1
    clock.advance(7200 - 300 - 1)  # refresh_before=300, no jitter
    assert await manager.get_component_token() == first
    clock.advance(2)
    second = await manager.get_component_token()
    assert second != first
    assert oauth.component_tokens_issued == 2
    # The platform keeps the old token valid, so calls already holding it still work.
    await manager.auth.pre_auth_code(first)
    assert await manager.get_component_token() == second


async def test_jitter_spreads_renewals_and_short_lives_renew_at_half(
    kuaishou_fake: FakeKuaishou, clock: Clock
) -> None:
    storage = InMemoryTokenStorage()
    async with make_manager(kuaishou_fake, clock, storage=storage, jitter=100.0) as m:
        await m.set_ticket(kuaishou_fake.oauth.push_ticket())
        stamps = []
        for _ in range(20):
            await m.get_component_token()
            stored = await storage.load_component_token(m.component_app_id)
            assert stored is not None
            stamps.append(stored.expires_at - stored.refresh_at)
            await m.invalidate_component_token(stored.value)
        assert all(300 <= s <= 400 for s in stamps)
        assert len(set(stamps)) > 1
        kuaishou_fake.oauth.component_token_ttl = 100  # shorter than refresh_before
        await m.get_component_token()
        stored = await storage.load_component_token(m.component_app_id)
        assert stored is not None
        assert stored.refresh_at == pytest.approx(clock.now + 50)


async def test_a_failed_renewal_ahead_of_expiry_keeps_the_current_token(
    kuaishou_fake: FakeKuaishou,
    manager: TokenManager,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await manager.get_component_token()
    clock.advance(7200 - 100)
    kuaishou_fake.inject(None, *[Fault.result(100200500, "down")] * 2)
    with caplog.at_level(logging.WARNING, "kuaishou_mp"):
        assert await manager.get_component_token() == first
    assert any("ahead of expiry failed (ServerError)" in r.getMessage() for r in caplog.records)
    clock.advance(200)  # now expired: callers wait for the renewal and see it fail
    kuaishou_fake.inject(None, *[Fault.result(100200500, "down")] * 2)
    with pytest.raises(ServerError):
        await manager.get_component_token()
    assert await manager.get_component_token() != first


async def test_a_failing_early_renewal_is_retried_every_30_s_and_warned_once(
    kuaishou_fake: FakeKuaishou,
    manager: TokenManager,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await manager.get_component_token()
    clock.advance(7200 - 250)
    kuaishou_fake.inject(None, *[Fault.result(100200500, "down")] * 6)
    with caplog.at_level(logging.INFO, "kuaishou_mp"):
        assert await manager.get_component_token() == first
        tried_once = len(kuaishou_fake.pending_global_faults)
        assert tried_once < 6
        for _ in range(5):  # within the gap: the current token, and the platform is not asked
            clock.advance(5)
            assert await manager.get_component_token() == first
        assert len(kuaishou_fake.pending_global_faults) == tried_once
        clock.advance(6)  # 31 s after the failure: tried again, and it fails again
        assert await manager.get_component_token() == first
        assert len(kuaishou_fake.pending_global_faults) < tried_once
    failures = [r for r in caplog.records if "ahead of expiry failed" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.WARNING, logging.INFO]
    assert "failed (ServerError) again" in failures[1].getMessage()
    kuaishou_fake.clear_faults()
    clock.advance(31)
    assert await manager.get_component_token() != first


async def test_without_a_ticket_there_is_no_component_token(
    kuaishou_fake: FakeKuaishou, clock: Clock
) -> None:
    async with make_manager(kuaishou_fake, clock) as m:
        with pytest.raises(TokenUnavailableError, match="set_ticket"):
            await m.get_component_token()
        with pytest.raises(InvalidInputError):
            await m.set_ticket("")
        await m.start_push_ticket()
        assert kuaishou_fake.oauth.push_started
        ticket = kuaishou_fake.oauth.ticket
        assert ticket is not None
        await m.set_ticket(ticket)
        assert await m.get_component_token()


async def test_component_token_expired_on_the_platform_is_replaced_once(
    kuaishou_fake: FakeKuaishou, manager: TokenManager
) -> None:
    await manager.get_component_token()
    kuaishou_fake.oauth.advance(7200)  # the platform's clock only: the manager still trusts it
    code = await manager.pre_auth_code()
    assert code.expires_in == 600
    assert kuaishou_fake.oauth.component_tokens_issued == 2
    assert kuaishou_fake.counters["result:100200108"] == 1


# -- authorizer tokens ------------------------------------------------------------------------


async def test_authorize_stores_the_tokens(
    kuaishou_fake: FakeKuaishou, manager: TokenManager, client: Client
) -> None:
    code = kuaishou_fake.oauth.authorize("ks_new")
    tokens = await manager.authorize(code)
    assert tokens.authorizer_app_id == "ks_new"
    assert len(tokens.authorize_permission) == 2
    storage = manager.storage
    access = await storage.load_access_token(manager.component_app_id, "ks_new")
    refresh = await storage.load_refresh_token(manager.component_app_id, "ks_new")
    assert access is not None
    assert access.value == tokens.authorizer_access_token
    assert refresh is not None
    assert refresh.value == tokens.authorizer_refresh_token
    assert (await client.app_info("ks_new")).app_name == "小程序 ks_new"
    assert kuaishou_fake.oauth.recoveries["ks_new"] == 0  # the stored token was used


async def test_authorize_needs_the_app_id_in_the_answer(
    kuaishou_fake: FakeKuaishou, manager: TokenManager
) -> None:
    await manager.get_component_token()
    kuaishou_fake.inject(None, Fault.raw(b'{"result": 1, "authorizerAccessToken": "t"}'))
    with pytest.raises(ResponseValidationError, match="authorizerAppId"):
        await manager.authorize("any-code")


async def test_expired_token_is_renewed_through_the_client(
    kuaishou_fake: FakeKuaishou, manager: TokenManager, client: Client
) -> None:
    kuaishou_fake.add_authorizer("ks_a")
    assert isinstance(manager, TokenProvider)
    await client.app_info("ks_a")  # nothing stored yet: recovered and exchanged
    oauth = kuaishou_fake.oauth
    assert (oauth.recoveries["ks_a"], oauth.exchanges["ks_a"]) == (1, 1)
    await client.app_info("ks_a")
    assert oauth.exchanges["ks_a"] == 1
    kuaishou_fake.expire_token("ks_a")  # the platform says 100200108
    await client.server_domain("ks_a", "get")
    assert (oauth.recoveries["ks_a"], oauth.exchanges["ks_a"]) == (2, 2)
    assert kuaishou_fake.counters["result:100200108"] == 1


async def test_token_past_its_expiry_is_renewed_before_the_call(
    kuaishou_fake: FakeKuaishou, manager: TokenManager, client: Client, clock: Clock
) -> None:
    oauth = kuaishou_fake.oauth
    await manager.authorize(oauth.authorize("ks_t"))
    clock.advance(7201)
    oauth.advance(7201)  # the issued token turns expired on the platform too
    assert kuaishou_fake.authorizer("ks_t").token_expired
    await client.app_info("ks_t")
    assert oauth.exchanges["ks_t"] == 2
    assert kuaishou_fake.counters["result:100200108"] == 0


async def test_short_lived_tokens_expire_on_the_fake_by_timer(
    kuaishou_fake: FakeKuaishou, manager: TokenManager, client: Client
) -> None:
    oauth = kuaishou_fake.oauth
    oauth.access_token_ttl = 0.2
    await manager.authorize(oauth.authorize("ks_s"))
    oauth.access_token_ttl = 7200
    await client.app_info("ks_s")
    await asyncio.sleep(0.3)
    assert kuaishou_fake.authorizer("ks_s").token_expired
    await client.app_info("ks_s")  # 100200108, invalidated, renewed
    assert oauth.exchanges["ks_s"] == 2


async def test_renewal_ahead_of_expiry_for_authorizers(
    kuaishou_fake: FakeKuaishou, manager: TokenManager, clock: Clock
) -> None:
    tokens = await manager.authorize(kuaishou_fake.oauth.authorize("ks_r"))
    clock.advance(7200 - 299)
    renewed = await manager.get_token("ks_r")
    assert renewed != tokens.authorizer_access_token
    assert kuaishou_fake.authorizer("ks_r").access_token == renewed


async def test_many_concurrent_calls_share_one_renewal(
    kuaishou_fake: FakeKuaishou, manager: TokenManager, client: Client
) -> None:
    await manager.authorize(kuaishou_fake.oauth.authorize("ks_hot"))
    kuaishou_fake.expire_token("ks_hot")
    results = await asyncio.gather(*(client.app_info("ks_hot") for _ in range(60)))
    assert len(results) == 60
    assert kuaishou_fake.oauth.exchanges["ks_hot"] == 2  # authorize + exactly one renewal
    assert kuaishou_fake.oauth.recoveries["ks_hot"] == 1


async def test_compare_and_invalidate(kuaishou_fake: FakeKuaishou, manager: TokenManager) -> None:
    old = (await manager.authorize(kuaishou_fake.oauth.authorize("ks_c"))).authorizer_access_token
    await manager.invalidate("ks_c", old)
    new = await manager.get_token("ks_c")
    assert new != old
    # A late worker reporting the old token must not throw the new one away.
    await manager.invalidate("ks_c", old)
    assert await manager.get_token("ks_c") == new
    assert kuaishou_fake.oauth.exchanges["ks_c"] == 2
    await manager.invalidate_component_token("not-the-current-one")
    assert kuaishou_fake.oauth.component_tokens_issued == 1


async def test_lapsed_authorization_raises(
    kuaishou_fake: FakeKuaishou, manager: TokenManager, client: Client
) -> None:
    kuaishou_fake.add_authorizer("ks_gone")
    kuaishou_fake.oauth.expire_authorization("ks_gone")
    with pytest.raises(RefreshTokenExpiredError) as info:
        await client.app_info("ks_gone")
    assert info.value.app_id == "ks_gone"


async def test_own_refresh_function(kuaishou_fake: FakeKuaishou, clock: Clock) -> None:
    seen: list[tuple[str, str | None]] = []

    async def refresh(app_id: str, refresh_token: str | None) -> AuthorizerTokens:
        seen.append((app_id, refresh_token))
        token = kuaishou_fake.rotate_token(app_id)
        rotated = "" if len(seen) > 1 else f"refresh-{len(seen)}"
        return AuthorizerTokens(token, expires_in=7200, authorizer_refresh_token=rotated)

    kuaishou_fake.add_authorizer("ks_own")
    async with make_manager(kuaishou_fake, clock, refresh=refresh) as m:
        first = await m.get_token("ks_own")
        await m.invalidate("ks_own", first)
        second = await m.get_token("ks_own")
        assert second != first
        # An empty refresh token in the answer keeps the stored one.
        stored = await m.storage.load_refresh_token(m.component_app_id, "ks_own")
        assert stored is not None
        assert stored.value == "refresh-1"
    assert seen == [("ks_own", None), ("ks_own", "refresh-1")]
    assert kuaishou_fake.oauth.recoveries["ks_own"] == 0


async def test_bad_refresh_results(kuaishou_fake: FakeKuaishou, clock: Clock) -> None:
    async def nothing(app_id: str, refresh_token: str | None) -> AuthorizerTokens:
        return "token"  # type: ignore[return-value]

    async def someone_else(app_id: str, refresh_token: str | None) -> AuthorizerTokens:
        return AuthorizerTokens("t", authorizer_app_id="ks_other")

    async with make_manager(kuaishou_fake, clock, refresh=nothing) as m:
        with pytest.raises(TokenUnavailableError, match="refresh function"):
            await m.get_token("ks_x")
    async with make_manager(kuaishou_fake, clock, refresh=someone_else) as m:
        with pytest.raises(ResponseValidationError, match="another authorizer"):
            await m.get_token("ks_x")


async def test_lock_timeout_and_a_busy_lock(kuaishou_fake: FakeKuaishou, clock: Clock) -> None:
    storage = InMemoryTokenStorage()
    async with make_manager(kuaishou_fake, clock, storage=storage, lock_timeout=0.05) as m:
        cid = m.component_app_id
        await m.set_ticket(kuaishou_fake.oauth.push_ticket())
        async with storage.lock(cid, "ks_l", ttl=30, timeout=1):  # "another process" renews
            with pytest.raises(LockTimeoutError):
                await m.get_token("ks_l")
            due = StoredToken("current", clock.now + 100, clock.now - 1)
            await storage.save_authorizer_tokens(cid, "ks_l", due, None)
            assert await m.get_token("ks_l") == "current"  # due, but someone is at it
        assert kuaishou_fake.oauth.recoveries["ks_l"] == 0


async def test_arguments_and_lifecycle(kuaishou_fake: FakeKuaishou, clock: Clock) -> None:
    auth = AuthClient("c", "s", base_url=kuaishou_fake.base_url)
    with pytest.raises(InvalidInputError):
        TokenManager("auth")  # type: ignore[arg-type]
    for bad in ({"refresh_before": -1}, {"jitter": "x"}, {"lock_ttl": 0}, {"lock_timeout": True}):
        with pytest.raises(InvalidInputError):
            TokenManager(auth, **bad)
    m = TokenManager(auth)
    assert isinstance(m.storage, TokenStorage)
    assert m.auth is auth
    assert "component_app_id='c'" in repr(m)
    with pytest.raises(InvalidInputError):
        await m.get_token("")
    await m.aclose()
    await m.aclose()
    assert auth.closed


CANARY = "CANARY_mgr_4e8b2c"


async def test_secrets_stay_out_of_logs_and_reprs(
    kuaishou_fake: FakeKuaishou,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    make_client: MakeClient,
) -> None:
    oauth = kuaishou_fake.oauth
    oauth.component_app_secret = f"{CANARY}-secret"
    storage = InMemoryTokenStorage()
    auth = AuthClient(
        kuaishou_fake.component_app_id, oauth.component_app_secret, base_url=kuaishou_fake.base_url
    )
    secrets: set[str] = {oauth.component_app_secret}
    with caplog.at_level(logging.DEBUG):
        async with TokenManager(auth, storage=storage, clock=clock) as m:
            ticket = oauth.push_ticket()
            secrets.add(ticket)
            await m.set_ticket(ticket)
            secrets.add(await m.get_component_token())
            code = oauth.authorize("ks_sec")
            secrets.add(code)
            tokens = await m.authorize(code)
            secrets |= {tokens.authorizer_access_token, tokens.authorizer_refresh_token}
            kuaishou_fake.expire_token("ks_sec")
            async with make_client(kuaishou_fake, token_provider=m) as c:
                await c.app_info("ks_sec")
            secrets.add(await m.get_token("ks_sec"))
            stored = await storage.load_access_token(m.component_app_id, "ks_sec")
            texts = [repr(m), repr(storage), repr(stored), repr(tokens), repr(auth)]
    texts += [r.getMessage() for r in caplog.records] + [repr(r.__dict__) for r in caplog.records]
    for text in texts:
        for secret in secrets:
            assert secret not in text
