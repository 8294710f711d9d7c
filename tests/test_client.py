"""The client end to end against the bundled fake platform."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import aiohttp
import pytest

from kuaishou_mp import (
    APIError,
    AppInfo,
    AppStatus,
    Authorizer,
    BadRequestError,
    Client,
    ClientClosedError,
    DomainAction,
    DomainNotFoundError,
    InMemoryTokenProvider,
    InvalidInputError,
    RateLimit,
    RequestTimeoutError,
    RetryPolicy,
    ServerDomains,
    ServerError,
    TokenExpiredError,
    TokenUnavailableError,
    TransportError,
    WebviewDomains,
)
from kuaishou_mp.testing import FakeKuaishou, Fault
from kuaishou_mp.testing.pytest_plugin import fake_client

if TYPE_CHECKING:
    from conftest import MakeClient


def auth(fake: FakeKuaishou, app_id: str = "ks_a") -> Authorizer:
    a = fake.add_authorizer(app_id)
    return Authorizer(a.app_id, a.access_token)


async def test_app_info_request_shape(kuaishou_fake: FakeKuaishou, kuaishou_client: Client) -> None:
    a = auth(kuaishou_fake)
    info = await kuaishou_client.app_info(a)
    assert isinstance(info, AppInfo)
    assert info.status is AppStatus.ONLINE
    (req,) = kuaishou_fake.requests
    assert req.method == "GET"
    assert req.path == "/openapi/mp/auth/app/info"
    assert req.query == {
        "component_app_id": kuaishou_fake.component_app_id,
        "authorizer_access_token": a.access_token,
    }
    assert req.body is None


async def test_server_domain_request_shape(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.authorizer(a.app_id).server_domains = {"request": ["old.com"]}
    after = await kuaishou_client.server_domain(
        a, DomainAction.ADD, request=["a.com"], udp=("u.com",)
    )
    assert after.request == ("old.com", "a.com")
    assert after.udp == ("u.com",)
    got = await kuaishou_client.server_domain(a, "get")
    assert got == after
    add, get = kuaishou_fake.requests
    assert add.method == "POST"
    assert add.path == "/openapi/mp/auth/app/server_domain"
    assert add.body == {"action": "add", "request": ["a.com"], "udp": ["u.com"]}
    assert add.content_type == "application/json"
    assert get.body == {"action": "get"}
    assert add.query["authorizer_access_token"] == a.access_token


async def test_webview_domain_request_shape_and_semantics(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    result = await kuaishou_client.webview_domain(a, "set", webview=["w1.com", "w2.com"])
    assert result == WebviewDomains(webview=("w1.com", "w2.com"))
    result = await kuaishou_client.webview_domain(a, DomainAction.DELETE, webview=["w1.com"])
    assert result.webview == ("w2.com",)
    with pytest.raises(DomainNotFoundError) as info:
        await kuaishou_client.webview_domain(a, "delete", webview=["nope.com"])
    assert info.value.code == 403106
    assert info.value.app_id == a.app_id
    req = kuaishou_fake.requests[0]
    assert req.path == "/openapi/mp/auth/app/webview_domain"
    assert req.body == {"action": "set", "webview": ["w1.com", "w2.com"]}
    # Business errors are never retried: three calls, three requests.
    assert len(kuaishou_fake.requests) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"action": "remove", "request": ["a.com"]}, "unknown domain action"),
        ({"action": "get", "request": ["a.com"]}, "'get' sends no domain lists"),
        ({"action": "add"}, "needs at least one"),
        ({"action": "add", "request": ["https://a.com"]}, r"request\[0\]"),
        ({"action": "add", "socket": ["ok.com", "bad host"]}, r"socket\[1\]"),
        ({"action": "add", "udp": "a.com"}, "single string"),
    ],
)
async def test_bad_input_is_refused_before_sending(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client, kwargs: dict[str, object], match: str
) -> None:
    a = auth(kuaishou_fake)
    with pytest.raises(InvalidInputError, match=match):
        await kuaishou_client.server_domain(a, **kwargs)  # type: ignore[arg-type]
    assert kuaishou_fake.requests == []


async def test_bare_app_id_needs_a_token_provider(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    with pytest.raises(InvalidInputError, match="token_provider"):
        await kuaishou_client.app_info("ks_a")
    with pytest.raises(InvalidInputError, match="Authorizer or an app id"):
        await kuaishou_client.app_info(42)  # type: ignore[arg-type]
    assert kuaishou_fake.requests == []


def test_constructor_refusals() -> None:
    with pytest.raises(InvalidInputError):
        Client("")
    with pytest.raises(InvalidInputError):
        Client("c", base_url="ftp://x")
    for base_url in ("http://", "http://h:99999", "http://h?x=1", "http://h/#f"):
        with pytest.raises(InvalidInputError, match="base_url"):
            Client("c", base_url=base_url)
    with pytest.raises(InvalidInputError):
        Client("c", error_codes={1: ValueError})  # type: ignore[dict-item]


async def test_lifecycle_owned_session(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    client = make_client(kuaishou_fake)
    async with client:
        session = client.session
        await client.app_info(a)
    assert session.closed
    assert client.closed
    with pytest.raises(ClientClosedError):
        await client.app_info(a)
    await client.close()  # idempotent
    assert "closed" in repr(client)


async def test_lazy_open_and_close(kuaishou_fake: FakeKuaishou, make_client: MakeClient) -> None:
    a = auth(kuaishou_fake)
    client = make_client(kuaishou_fake)
    assert (await client.app_info(a)).app_name
    await client.close()
    with pytest.raises(ClientClosedError):
        _ = client.session


async def test_injected_session_is_used_and_not_closed(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    async with aiohttp.ClientSession() as session:
        async with make_client(kuaishou_fake, session=session) as client:
            assert client.session is session
            await client.app_info(a)
        assert not session.closed
        async with session.get(f"{kuaishou_fake.base_url}/nope") as response:
            assert response.status == 404


async def test_fake_client_puts_the_options_over_the_test_defaults(
    kuaishou_fake: FakeKuaishou,
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.http(503))
    async with fake_client(kuaishou_fake) as retrying:
        assert retrying.component_app_id == kuaishou_fake.component_app_id
        assert (await retrying.app_info(a)).app_name  # the fake's URL; the 503 was retried
    kuaishou_fake.inject(a.app_id, Fault.http(503))
    async with fake_client(kuaishou_fake, retry=None) as plain:
        with pytest.raises(TransportError):
            await plain.app_info(a)
    assert len(kuaishou_fake.requests) == 3


async def test_unknown_code_and_custom_table(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.fail_next(a.app_id, 777777, times=2, error_msg="new code")
    async with make_client(kuaishou_fake, retry=None) as plain:
        with pytest.raises(APIError) as info:
            await plain.app_info(a)
        assert type(info.value) is APIError
        assert info.value.message == "new code"
    async with make_client(kuaishou_fake, error_codes={777777: ServerError}) as custom:
        # Reclassified as a server error, so it is now retried and succeeds.
        assert (await custom.app_info(a)).app_name
    assert len(kuaishou_fake.requests) == 3


async def test_scripted_retries_end_in_success(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.http(503), Fault.result(100200500), Fault.result(400002))
    info = await kuaishou_client.app_info(a)
    assert info.app_name
    assert [r.outcome for r in kuaishou_fake.requests] == [
        "http:503",
        "result:100200500",
        "result:400002",
        "ok",
    ]


async def test_retries_give_up_with_the_real_error(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.fail_next(a.app_id, 100200500, times=10)
    with pytest.raises(ServerError) as info:
        await kuaishou_client.app_info(a)
    assert info.value.code == 100200500
    assert len(kuaishou_fake.requests) == 4


async def test_max_attempts_one_and_with_options(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.http(503))
    once = kuaishou_client.with_options(retry=RetryPolicy.none())
    with pytest.raises(TransportError) as info:
        await once.app_info(a)
    assert info.value.status == 503
    assert len(kuaishou_fake.requests) == 1
    # The copy shares the session; the original keeps its own retry policy.
    assert once.session is kuaishou_client.session
    kuaishou_fake.inject(a.app_id, Fault.http(503))
    assert (await kuaishou_client.app_info(a)).app_name
    assert len(kuaishou_fake.requests) == 3


async def test_business_errors_are_not_retried(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    for code, cls in ((100200100, BadRequestError), (100200102, APIError)):
        kuaishou_fake.fail_next(a.app_id, code)
        with pytest.raises(cls):
            await kuaishou_client.app_info(a)
    assert len(kuaishou_fake.requests) == 2


async def test_timeout_and_deadline(kuaishou_fake: FakeKuaishou, make_client: MakeClient) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.hang(30), Fault.hang(30), Fault.hang(30), Fault.hang(30))
    async with make_client(
        kuaishou_fake, timeout=0.2, retry=RetryPolicy(backoff_base=0.01, deadline=0.5)
    ) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RequestTimeoutError):
            await client.app_info(a)
        elapsed = loop.time() - started
    # The deadline bounds the whole call: 0.5 s holds at most three attempts of 0.2 s, where
    # the policy alone would make four. (The time bound only guards against a hang.)
    assert 2 <= len(kuaishou_fake.requests) <= 3
    assert elapsed < 5


async def test_dropped_connection_is_retried(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.drop(), Fault.malformed())
    assert (await kuaishou_client.app_info(a)).app_name
    assert [r.outcome for r in kuaishou_fake.requests][-1] == "ok"
    assert len(kuaishou_fake.requests) == 3


async def test_connection_refused_is_a_transport_error() -> None:
    async with Client("c", base_url="http://127.0.0.1:9", retry=RetryPolicy.none()) as client:
        with pytest.raises(TransportError) as info:
            await client.app_info(Authorizer("a", "tok_secret_1234"))
    assert info.value.request_sent is False
    assert info.value.__context__ is None
    assert info.value.__cause__ is None


async def test_delete_after_ambiguous_failure_confirms_with_get(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.authorizer(a.app_id).server_domains = {"request": ["a.com", "b.com"]}
    # The first delete reaches the platform and is applied, but its answer is lost.
    kuaishou_fake.inject(a.app_id, Fault.drop_after_applying())
    after = await kuaishou_client.server_domain(a, "delete", request=["a.com"])
    assert after.request == ("b.com",)
    assert [r.body["action"] for r in kuaishou_fake.requests if r.body] == [
        "delete",
        "delete",
        "get",
    ]


async def test_delete_403106_without_ambiguity_is_raised(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.authorizer(a.app_id).server_domains = {"request": ["b.com"]}
    # An ambiguous failure first, but the domain really is absent and another one is present.
    kuaishou_fake.inject(a.app_id, Fault.http(502))
    with pytest.raises(DomainNotFoundError):
        await kuaishou_client.server_domain(a, "delete", request=["a.com", "b.com"])
    with pytest.raises(DomainNotFoundError):
        await kuaishou_client.server_domain(a, "delete", request=["zzz.com"])
    assert [r.body["action"] for r in kuaishou_fake.requests if r.body] == [
        "delete",
        "delete",
        "get",
        "delete",
    ]


async def test_token_provider_refreshes_once(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    fa = kuaishou_fake.add_authorizer("ks_t")
    fetches: list[str] = []

    async def refresh(app_id: str) -> str:
        fetches.append(app_id)
        await asyncio.sleep(0.01)
        return kuaishou_fake.rotate_token(app_id)

    provider = CountingProvider({"ks_t": fa.access_token}, refresh=refresh)
    kuaishou_fake.expire_token("ks_t")
    async with make_client(kuaishou_fake, token_provider=provider, rate_limit=None) as client:
        results = await asyncio.gather(*(client.app_info("ks_t") for _ in range(100)))
    assert all(r.app_name for r in results)
    assert fetches == ["ks_t"]
    assert provider.effective_invalidations == 1


async def test_second_expiry_raises(kuaishou_fake: FakeKuaishou, make_client: MakeClient) -> None:
    fa = kuaishou_fake.add_authorizer("ks_t")

    async def refresh(app_id: str) -> str:
        kuaishou_fake.rotate_token(app_id)
        kuaishou_fake.expire_token(app_id)
        return kuaishou_fake.authorizer(app_id).access_token

    provider = InMemoryTokenProvider({"ks_t": fa.access_token}, refresh=refresh)
    kuaishou_fake.expire_token("ks_t")
    async with make_client(kuaishou_fake, token_provider=provider) as client:
        with pytest.raises(TokenExpiredError):
            await client.app_info("ks_t")
    assert len(kuaishou_fake.requests) == 2


async def test_static_provider_without_refresh(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    fa = kuaishou_fake.add_authorizer("ks_s")
    provider = InMemoryTokenProvider({"ks_s": fa.access_token})
    async with make_client(kuaishou_fake, token_provider=provider) as client:
        assert (await client.app_info("ks_s")).app_name
        with pytest.raises(TokenUnavailableError):
            await client.app_info("unknown")
        kuaishou_fake.expire_token("ks_s")
        with pytest.raises(TokenUnavailableError):
            await client.app_info("ks_s")
    assert "tokens" in repr(provider)
    assert fa.access_token not in repr(provider)


async def test_adaptive_limiter_converges_under_platform_limit(
    kuaishou_fake: FakeKuaishou,
    make_client: MakeClient,
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.qps_limit = 10
    async with make_client(
        kuaishou_fake,
        rate_limit=RateLimit(per_authorizer_qps=40, burst=1),
        retry=RetryPolicy(max_attempts=8, backoff_base=0.05, backoff_max=0.5),
    ) as client:
        results = await asyncio.gather(*(client.app_info(a) for _ in range(25)))
    assert len(results) == 25
    throttled = kuaishou_fake.counters["result:400002"]
    # Without adaptation, 40 qps against 10 would burn retries on most calls.
    assert throttled <= 12, throttled


async def test_rate_limit_spaces_calls_per_authorizer(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    a = auth(kuaishou_fake, "ks_r")
    b = auth(kuaishou_fake, "ks_q")
    async with make_client(
        kuaishou_fake, rate_limit=RateLimit(per_authorizer_qps=20, burst=1)
    ) as client:
        await asyncio.gather(*(client.app_info(x) for x in [a, b] * 10))
    for app_id in ("ks_r", "ks_q"):
        times = kuaishou_fake.arrivals(app_id)
        assert len(times) == 10
        # Ten calls at 20/s take at least nine intervals of 50 ms (less a little transit
        # jitter at both ends); unlimited, they would all arrive within a few milliseconds.
        assert times[-1] - times[0] > 9 * 0.05 * 0.8
        assert kuaishou_fake.max_in_window(app_id, 0.2) <= 5


async def test_retry_logs_are_metadata_only(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.http(503), Fault.result(400002))
    with caplog.at_level(logging.DEBUG, logger="kuaishou_mp"):
        await kuaishou_client.app_info(a)
    retries = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(retries) == 2
    assert "status=503" in retries[0].getMessage()
    assert "code=400002" in retries[1].getMessage()
    for record in caplog.records:
        assert a.access_token not in record.getMessage()
        assert record.exc_info is None


class CountingProvider(InMemoryTokenProvider):
    """Counts invalidations that actually dropped a token."""

    effective_invalidations = 0

    async def invalidate(self, app_id: str, token: str) -> None:
        before = await self._peek(app_id)
        await super().invalidate(app_id, token)
        if before == token and await self._peek(app_id) is None:
            self.effective_invalidations += 1

    async def _peek(self, app_id: str) -> str | None:
        return self._tokens.get(app_id)


def test_server_domains_model_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        ServerDomains(request="a.com")


async def test_tokens_are_escaped_in_the_query(
    kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    for token in ("tok+with/odd=chars&x", "tokénünïcode"):
        fa = kuaishou_fake.add_authorizer(access_token=token)
        async with make_client(kuaishou_fake) as c:
            assert (await c.app_info(Authorizer(fa.app_id, token))).app_name
        assert kuaishou_fake.requests[-1].query["authorizer_access_token"] == token


async def test_a_retry_logs_at_info_not_warning(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A retry is a per-call event: INFO, never a WARNING per call."""
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.http(503))
    with caplog.at_level(logging.DEBUG, "kuaishou_mp"):
        assert (await kuaishou_client.app_info(a)).app_name
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
