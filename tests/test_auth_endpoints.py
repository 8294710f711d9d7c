"""The five OAuth endpoints: request shape, camelCase parsing, errorMsg and error mapping."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kuaishou_mp import (
    APIError,
    AuthError,
    BadRequestError,
    ClientClosedError,
    InvalidInputError,
    KuaishouError,
    RefreshTokenExpiredError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    Timeout,
    TokenExpiredError,
    TransportError,
)
from kuaishou_mp._pipeline import _retries
from kuaishou_mp.auth import (
    AuthClient,
    AuthorizationCode,
    AuthorizerTokens,
    ComponentAccessToken,
    Permission,
    PreAuthCode,
)
from kuaishou_mp.auth._endpoints import (
    AUTHORIZER_ACCESS_TOKEN,
    COMPONENT_ACCESS_TOKEN,
    ENDPOINTS,
    START_PUSH_TICKET,
    build_query,
    decode,
)
from kuaishou_mp.errors import DEFAULT_ERROR_CODES
from kuaishou_mp.testing import OAUTH_PATHS, FakeKuaishou, Fault

FAST = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.002, deadline=10.0)


@pytest_asyncio.fixture
async def auth(kuaishou_fake: FakeKuaishou) -> AsyncIterator[AuthClient]:
    async with AuthClient(
        kuaishou_fake.component_app_id,
        kuaishou_fake.oauth.component_app_secret,
        base_url=kuaishou_fake.base_url,
        retry=FAST,
        timeout=5.0,
    ) as client:
        yield client


async def _component_token(fake: FakeKuaishou, auth: AuthClient) -> str:
    answer = await auth.component_access_token(fake.oauth.push_ticket())
    return answer.component_access_token


# -- request shapes and parsing ---------------------------------------------------------------


def test_paths_match_the_fake() -> None:
    assert tuple(e.path for e in ENDPOINTS) == OAUTH_PATHS
    assert {e.method for e in ENDPOINTS} == {"GET"}


async def test_start_push_ticket(kuaishou_fake: FakeKuaishou, auth: AuthClient) -> None:
    await auth.start_push_ticket()
    assert kuaishou_fake.oauth.push_started
    assert kuaishou_fake.oauth.ticket is not None
    (req,) = kuaishou_fake.requests
    assert (req.method, req.path, req.body) == ("GET", "/mp/tp/oauth/start_push_ticket", None)
    assert req.query == {
        "component_app_id": kuaishou_fake.component_app_id,
        "component_app_secret": kuaishou_fake.oauth.component_app_secret,
    }


async def test_component_access_token(kuaishou_fake: FakeKuaishou, auth: AuthClient) -> None:
    ticket = kuaishou_fake.oauth.push_ticket()
    answer = await auth.component_access_token(ticket)
    assert isinstance(answer, ComponentAccessToken)
    assert answer.expires_in == 7200
    assert answer.component_access_token.startswith("ctok_")
    assert answer.component_access_token not in repr(answer)
    (req,) = kuaishou_fake.requests
    assert req.path == "/mp/tp/oauth/access_token"
    assert req.query == {
        "component_app_id": kuaishou_fake.component_app_id,
        "component_app_secret": kuaishou_fake.oauth.component_app_secret,
        "component_verify_ticket": ticket,
    }
    # Each call issues a new token; the old one stays valid.
    again = await auth.component_access_token(ticket)
    assert again.component_access_token != answer.component_access_token
    await auth.pre_auth_code(answer.component_access_token)
    assert kuaishou_fake.oauth.component_tokens_issued == 2


async def test_pre_auth_code(kuaishou_fake: FakeKuaishou, auth: AuthClient) -> None:
    token = await _component_token(kuaishou_fake, auth)
    code = await auth.pre_auth_code(token)
    assert isinstance(code, PreAuthCode)
    assert code.expires_in == 600
    assert code.pre_auth_code not in repr(code)
    req = kuaishou_fake.requests[-1]
    assert req.path == "/mp/tp/oauth/pre_auth_code"
    assert req.query == {
        "component_app_id": kuaishou_fake.component_app_id,
        "component_access_token": token,
    }
    # The pre-auth code is what the authorization page takes.
    assert kuaishou_fake.oauth.authorize("ks_pre", pre_auth_code=code.pre_auth_code)
    with pytest.raises(ValueError, match="pre-authorization"):
        kuaishou_fake.oauth.authorize("ks_pre", pre_auth_code=code.pre_auth_code)


async def test_authorizer_tokens(kuaishou_fake: FakeKuaishou, auth: AuthClient) -> None:
    token = await _component_token(kuaishou_fake, auth)
    perms: list[dict[str, object]] = [
        {"id": 7, "category": "c", "description": "d"},
        {"id": "x9", "category": "e"},
    ]
    code = kuaishou_fake.oauth.authorize("ks_new", permissions=perms)
    tokens = await auth.authorizer_tokens(token, code)
    assert isinstance(tokens, AuthorizerTokens)
    assert tokens.authorizer_app_id == "ks_new"
    assert (tokens.expires_in, tokens.refresh_expires_in) == (7200, 2592000)
    assert tokens.authorize_permission == (
        Permission(7, "c", "d"),
        Permission("x9", "e", ""),
    )
    assert tokens.authorizer_refresh_token == kuaishou_fake.oauth.refresh_token("ks_new")
    text = repr(tokens)
    assert tokens.authorizer_access_token not in text
    assert tokens.authorizer_refresh_token not in text
    req = kuaishou_fake.requests[-1]
    assert req.path == "/mp/tp/oauth/authorizer_access_token"
    assert req.query == {
        "component_app_id": kuaishou_fake.component_app_id,
        "component_access_token": token,
        "authorization_code": code,
    }
    assert kuaishou_fake.oauth.exchanges["ks_new"] == 1
    # The issued token is the one the basic-info endpoints accept.
    assert kuaishou_fake.authorizer("ks_new").access_token == tokens.authorizer_access_token
    # A code is spent by its exchange.
    with pytest.raises(BadRequestError, match="invalid authorization_code") as info:
        await auth.authorizer_tokens(token, code)
    assert info.value.code == 100200100
    assert info.value.endpoint == "authorizer_access_token"


async def test_recover_authorization_code(kuaishou_fake: FakeKuaishou, auth: AuthClient) -> None:
    kuaishou_fake.add_authorizer("ks_old")
    old = kuaishou_fake.authorizer("ks_old").access_token
    token = await _component_token(kuaishou_fake, auth)
    code = await auth.recover_authorization_code(token, "ks_old")
    assert isinstance(code, AuthorizationCode)
    assert code.expires_in == 3600
    assert code.authorization_code not in repr(code)
    req = kuaishou_fake.requests[-1]
    assert req.path == "/mp/tp/oauth/re_authorization_code"
    assert req.app_id == "ks_old"
    assert req.query == {
        "component_app_id": kuaishou_fake.component_app_id,
        "component_access_token": token,
        "authorized_app_id": "ks_old",
    }
    tokens = await auth.authorizer_tokens(token, code.authorization_code)
    assert tokens.authorizer_app_id == "ks_old"
    assert tokens.authorizer_access_token != old
    assert kuaishou_fake.oauth.recoveries["ks_old"] == 1


async def test_tokens_with_special_characters_are_encoded(
    kuaishou_fake: FakeKuaishou,
) -> None:
    kuaishou_fake.oauth.component_app_secret = "s e/c&r=t+%"
    async with AuthClient(
        kuaishou_fake.component_app_id, "s e/c&r=t+%", base_url=kuaishou_fake.base_url
    ) as auth:
        await auth.start_push_ticket()
    assert kuaishou_fake.requests[-1].query["component_app_secret"] == "s e/c&r=t+%"


# -- errors -----------------------------------------------------------------------------------


async def test_error_mapping(kuaishou_fake: FakeKuaishou, auth: AuthClient) -> None:
    oauth = kuaishou_fake.oauth
    with pytest.raises(AuthError) as bad_ticket:
        await auth.component_access_token("not-a-ticket")
    assert bad_ticket.value.code == 100200102
    assert "invalid component_verify_ticket" in bad_ticket.value.message

    token = await _component_token(kuaishou_fake, auth)
    with pytest.raises(AuthError) as refused:
        await auth.pre_auth_code("unknown-token")
    assert type(refused.value) is AuthError
    assert refused.value.code == 100200102

    with pytest.raises(BadRequestError, match="not authorized"):
        await auth.recover_authorization_code(token, "ks_nobody")

    kuaishou_fake.add_authorizer("ks_lapsed")
    oauth.expire_authorization("ks_lapsed")
    with pytest.raises(RefreshTokenExpiredError) as lapsed:
        await auth.recover_authorization_code(token, "ks_lapsed")
    assert lapsed.value.code == 100200113
    assert lapsed.value.app_id == "ks_lapsed"

    oauth.advance(7200)
    with pytest.raises(TokenExpiredError) as expired:
        await auth.pre_auth_code(token)
    assert expired.value.code == 100200108
    assert expired.value.message == "component_access_token expired"

    code = oauth.authorize("ks_slow")
    oauth.advance(3600)
    fresh = await _component_token(kuaishou_fake, auth)
    with pytest.raises(BadRequestError, match="authorization_code expired"):
        await auth.authorizer_tokens(fresh, code)


async def test_wrong_client_and_secret(kuaishou_fake: FakeKuaishou) -> None:
    for cid, secret in (
        ("someone_else", kuaishou_fake.oauth.component_app_secret),
        (kuaishou_fake.component_app_id, "wrong-secret"),
    ):
        async with AuthClient(cid, secret, base_url=kuaishou_fake.base_url) as auth:
            with pytest.raises(AuthError) as info:
                await auth.start_push_ticket()
            assert info.value.code == 100200101
            assert info.value.message == "invalid client"


async def test_server_errors_are_retried_but_an_exchange_is_not(
    kuaishou_fake: FakeKuaishou, auth: AuthClient
) -> None:
    token = await _component_token(kuaishou_fake, auth)
    kuaishou_fake.inject(None, Fault.result(100200500, "boom"), Fault.http(503))
    await auth.pre_auth_code(token)  # third attempt succeeds
    assert kuaishou_fake.counters["endpoint:oauth_pre_auth_code"] == 3

    code = kuaishou_fake.oauth.authorize("ks_x")
    # The exchange may have happened when the answer is lost: no retry of ours. (aiohttp
    # itself resends a GET once when a reused keep-alive connection drops; the spent code
    # then answers 100200100.)
    kuaishou_fake.inject(None, Fault.drop_after_applying())
    with pytest.raises((TransportError, BadRequestError)):
        await auth.authorizer_tokens(token, code, authorized_app_id="ks_x")
    assert kuaishou_fake.oauth.exchanges["ks_x"] == 1
    assert kuaishou_fake.counters["endpoint:oauth_authorizer_access_token"] <= 2
    # A server error may have acted too; throttling did not, and is retried.
    code = kuaishou_fake.oauth.authorize("ks_x")
    kuaishou_fake.inject(None, Fault.result(100200500))
    with pytest.raises(ServerError) as info:
        await auth.authorizer_tokens(token, code, authorized_app_id="ks_x")
    assert info.value.app_id == "ks_x"
    kuaishou_fake.inject(None, Fault.result(400002, "api限速"))
    tokens = await auth.authorizer_tokens(token, code)
    assert tokens.authorizer_app_id == "ks_x"


async def test_exchange_retries_connection_failures() -> None:
    # Nothing listens on port 9: the request certainly never left, so it is retried.
    policy = RetryPolicy(max_attempts=2, backoff_base=0.001)
    async with AuthClient("c", "s", base_url="http://127.0.0.1:9", retry=policy) as auth:
        with pytest.raises(TransportError) as info:
            await auth.authorizer_tokens("tok", "code")
    assert info.value.request_sent is False
    assert _retries.retryable(auth._pipeline.policy, AUTHORIZER_ACCESS_TOKEN.idempotency)(
        info.value
    )


async def test_wrong_method_and_shapes(kuaishou_fake: FakeKuaishou, auth: AuthClient) -> None:
    session = auth._holder.get()
    async with session.post(f"{kuaishou_fake.base_url}/mp/tp/oauth/access_token") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET"
        assert (await response.json())["errorMsg"] == "[405] METHOD NOT ALLOWED"
    assert kuaishou_fake.counters["endpoint:oauth_access_token"] == 1
    kuaishou_fake.inject(None, Fault.raw(b'{"result": 1, "expiresIn": "soon"}'))
    with pytest.raises(ResponseValidationError) as info:
        await auth.component_access_token(kuaishou_fake.oauth.push_ticket())
    assert any("component_access_token" in e for e in info.value.errors)
    assert any("expires_in" in e for e in info.value.errors)


async def test_missing_parameters_answer_bad_request(kuaishou_fake: FakeKuaishou) -> None:
    oauth = kuaishou_fake.oauth
    cid = kuaishou_fake.component_app_id
    assert oauth._start_push_ticket({})[0][1] == "result:100200100"
    assert oauth._start_push_ticket({"component_app_id": cid})[0][1] == "result:100200100"
    full = {"component_app_id": cid, "component_app_secret": oauth.component_app_secret}
    assert oauth._component_access_token(full)[0][1] == "result:100200100"
    assert oauth._pre_auth_code({"component_app_id": cid})[0][1] == "result:100200100"
    token = "ctok_x"
    oauth._component_tokens[token] = oauth.now() + 60
    base = {"component_app_id": cid, "component_access_token": token}
    assert oauth._authorizer_access_token(base)[0][1] == "result:100200100"
    assert oauth._re_authorization_code(base)[0][1] == "result:100200100"


# -- the pure layer ---------------------------------------------------------------------------


def test_build_query_encodes_values_and_refuses_empty_ones_without_echoing_them() -> None:
    query = build_query(START_PUSH_TICKET, {"a": "x y", "b": "&=+%"})
    assert query == "a=x%20y&b=%26%3D%2B%25"
    with pytest.raises(InvalidInputError, match="component_verify_ticket must be") as info:
        build_query(COMPONENT_ACCESS_TOKEN, {"component_verify_ticket": ""})
    assert info.value.endpoint == "component_access_token"


def test_decode_reads_error_msg_and_masks_secrets() -> None:
    body = b'{"result": 100200108, "errorMsg": "token SECRET-TOKEN-1 expired"}'
    with pytest.raises(TokenExpiredError) as info:
        decode(
            AUTHORIZER_ACCESS_TOKEN,
            200,
            body,
            app_id="ks",
            error_codes=DEFAULT_ERROR_CODES,
            secrets=("SECRET-TOKEN-1",),
        )
    assert "SECRET-TOKEN-1" not in str(info.value)
    assert "SECRET-TOKEN-1" not in repr(info.value.args)
    assert info.value.message == "token *** expired"
    unknown = b'{"result": 123, "errorMsg": "new"}'
    with pytest.raises(APIError) as plain:
        decode(START_PUSH_TICKET, 200, unknown, app_id=None, error_codes={}, secrets=())
    assert type(plain.value) is APIError
    ok = b'{"result": 1, "errorMsg": "success", "componentAccessToken": "t", "expiresIn": null}'
    token = decode(COMPONENT_ACCESS_TOKEN, 200, ok, app_id=None, error_codes={}, secrets=())
    assert token == ComponentAccessToken("t", 7200)
    with pytest.raises(ResponseValidationError):
        decode(
            COMPONENT_ACCESS_TOKEN, 200, b'{"result": 1}', app_id=None, error_codes={}, secrets=()
        )


def test_structure_rejects_non_objects() -> None:
    body = b'{"result": 1, "authorizerAccessToken": "a", "authorizePermission": [5, true]}'
    with pytest.raises(ResponseValidationError) as info:
        decode(AUTHORIZER_ACCESS_TOKEN, 200, body, app_id=None, error_codes={}, secrets=())
    assert len(info.value.errors) == 2
    body = b'{"result": 1, "authorizerAccessToken": "a", "authorizePermission": [{"id": 1.5}]}'
    with pytest.raises(ResponseValidationError, match="integer or a string"):
        decode(AUTHORIZER_ACCESS_TOKEN, 200, body, app_id=None, error_codes={}, secrets=())


# -- lifecycle and secrets --------------------------------------------------------------------


async def test_lifecycle_and_arguments(kuaishou_fake: FakeKuaishou) -> None:
    with pytest.raises(InvalidInputError):
        AuthClient("", "s")
    with pytest.raises(InvalidInputError):
        AuthClient("c", "")
    with pytest.raises(InvalidInputError):
        AuthClient("c", "s", base_url="ftp://x")
    with pytest.raises(InvalidInputError):
        AuthClient("c", "s", error_codes={1: ValueError})  # type: ignore[dict-item]
    auth = AuthClient("c", "topsecret", base_url=kuaishou_fake.base_url, retry=None)
    assert "topsecret" not in repr(auth)
    assert auth.component_app_id == "c"
    await auth.close()
    await auth.close()
    assert auth.closed
    assert "closed" in repr(auth)
    with pytest.raises(ClientClosedError):
        await auth.start_push_ticket()


async def test_injected_session_is_not_closed(kuaishou_fake: FakeKuaishou) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with AuthClient(
            kuaishou_fake.component_app_id,
            kuaishou_fake.oauth.component_app_secret,
            base_url=kuaishou_fake.base_url,
            session=session,
        ) as auth:
            await auth.start_push_ticket()
        assert not session.closed


CANARY = "CANARY_oauth_9d1f7e3a"


def _all_text(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))]
    seen: BaseException | None = exc
    while seen is not None:
        parts += [repr(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


ECHO = f"{CANARY}S {CANARY}T {CANARY}C {CANARY}A"
ECHOES = {
    "error_msg": Fault.result(100200101, f"bad secret {ECHO}"),
    "html": Fault.raw(f"<p>{ECHO}</p>".encode(), content_type="text/html"),
    "http_500": Fault.http(500, body=f"<p>{ECHO}</p>".encode()),
    "timeout": Fault.hang(10),
    "dropped": Fault.drop(),
}


@pytest.mark.parametrize("fault", list(ECHOES))
async def test_secrets_never_leak(
    fault: str, kuaishou_fake: FakeKuaishou, caplog: pytest.LogCaptureFixture
) -> None:
    kuaishou_fake.oauth.component_app_secret = f"{CANARY}S"
    kuaishou_fake.inject(None, *([ECHOES[fault]] * 4))
    with caplog.at_level(logging.DEBUG):
        async with AuthClient(
            kuaishou_fake.component_app_id,
            f"{CANARY}S",
            base_url=kuaishou_fake.base_url,
            timeout=Timeout(total=0.3),
            retry=RetryPolicy(max_attempts=2, backoff_base=0.001),
        ) as auth:
            with pytest.raises(KuaishouError) as info:
                await auth.component_access_token(f"{CANARY}T")
            with pytest.raises(KuaishouError) as info2:
                await auth.authorizer_tokens(f"{CANARY}C", f"{CANARY}A")
    # Each call masks its own secrets (the other call's are not known to it).
    for exc, secrets in ((info.value, "ST"), (info2.value, "SCA")):
        text = _all_text(exc)
        for which in secrets:
            assert f"{CANARY}{which}" not in text
    for record in caplog.records:
        assert CANARY not in record.getMessage()
        assert CANARY not in repr(record.__dict__)


async def test_secrets_never_leak_on_connection_errors() -> None:
    async with AuthClient(
        "c", f"{CANARY}S", base_url="http://127.0.0.1:9", retry=RetryPolicy.none()
    ) as auth:
        with pytest.raises(TransportError) as info:
            await auth.recover_authorization_code(f"{CANARY}C", "ks")
    assert CANARY not in _all_text(info.value)
