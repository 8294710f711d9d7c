"""The call pipeline's own pieces: the request object, idempotency as data, and the seams."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import pytest

from kuaishou_mp import (
    AttemptEnd,
    AttemptStart,
    Authorizer,
    Client,
    Hooks,
    InvalidInputError,
    RateLimitedError,
    RetryPolicy,
    ServerDomains,
    ServerError,
    TransportError,
)
from kuaishou_mp._callstats import CallStats
from kuaishou_mp._endpoints import (
    APP_INFO,
    SERVER_DOMAIN,
    WEBVIEW_DOMAIN,
    Idempotency,
    delete_took_effect,
)
from kuaishou_mp._pipeline import Request, _retries
from kuaishou_mp.auth._endpoints import AUTHORIZER_ACCESS_TOKEN, ENDPOINTS
from kuaishou_mp.testing import FakeKuaishou, Fault
from kuaishou_mp.testing.pytest_plugin import fast_retry_policy

if TYPE_CHECKING:
    from conftest import MakeClient


def auth(fake: FakeKuaishou, app_id: str = "ks_p") -> Authorizer:
    a = fake.add_authorizer(app_id)
    return Authorizer(a.app_id, a.access_token)


class Recorder(Hooks):
    """Hooks keeping the attempts they were told of."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.ended: list[AttemptEnd] = []

    def on_attempt_start(self, event: AttemptStart) -> None:
        self.started.append((event.endpoint, event.attempt))

    def on_attempt_end(self, event: AttemptEnd) -> None:
        self.ended.append(event)


class Gate:
    def __init__(self, allow: bool) -> None:
        self.allow = allow
        self.asked: list[tuple[str | None, str]] = []

    def allow_retry(self, request: Request, failure: BaseException) -> bool:
        self.asked.append((request.app_id, type(failure).__name__))
        return self.allow


class Readmit:
    """Throttle feedback sending the call back through the limiter, ``times`` times."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.seen: list[int] = []

    async def throttled(self, request: Request, error: RateLimitedError) -> bool:
        self.seen.append(error.code)
        self.times -= 1
        return self.times >= 0


def test_idempotency_is_data_on_the_specs() -> None:
    assert APP_INFO.idempotency is Idempotency.SAFE
    assert SERVER_DOMAIN.idempotency is Idempotency.CONFIRM_DELETE
    assert WEBVIEW_DOMAIN.idempotency is Idempotency.CONFIRM_DELETE
    assert AUTHORIZER_ACCESS_TOKEN.idempotency is Idempotency.ONCE
    others = [e for e in ENDPOINTS if e is not AUTHORIZER_ACCESS_TOKEN]
    assert all(e.idempotency is Idempotency.SAFE for e in others)


def test_a_spent_once_call_retries_only_what_never_reached_the_platform() -> None:
    policy = RetryPolicy()
    once = _retries.retryable(policy, Idempotency.ONCE)
    safe = _retries.retryable(policy, Idempotency.SAFE)
    sent = TransportError("lost", request_sent=True)
    maybe = TransportError("lost")  # request_sent None: it may have arrived
    unsent = TransportError("refused", request_sent=False)
    server = ServerError("x", code=100200500)
    throttled = RateLimitedError("x", code=400002)
    assert [once(e) for e in (sent, maybe, unsent, server, throttled)] == [
        False,
        False,
        True,
        False,
        True,
    ]
    assert all(safe(e) for e in (sent, maybe, unsent, server, throttled))


def test_delete_took_effect_compares_case_insensitively() -> None:
    body = {"action": "delete", "request": ["A.example.com"]}
    assert delete_took_effect(SERVER_DOMAIN, body, ServerDomains(request=("b.example.com",)))
    assert not delete_took_effect(SERVER_DOMAIN, body, ServerDomains(request=("a.EXAMPLE.com",)))


def test_a_request_repr_shows_no_token() -> None:
    request = Request(APP_INFO, Authorizer("ks_r", "tok_secret_123"), None, None, CallStats())
    request.app_id, request.token = "ks_r", "tok_secret_123"
    assert "tok_secret_123" not in repr(request)
    assert "ks_r" in repr(request)
    assert request.scrubbed() == ("tok_secret_123",)


@pytest.mark.parametrize("bad", [None, 42, b"ks_bytes"])
async def test_a_missing_or_odd_authorizer_is_refused_before_sending(
    bad: object, kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    with pytest.raises(InvalidInputError, match="expected an Authorizer or an app id string"):
        await kuaishou_client.app_info(bad)  # type: ignore[arg-type]
    assert kuaishou_fake.requests == []


async def test_hooks_see_every_attempt_and_never_the_token(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    recorder = Recorder()
    client = kuaishou_client.with_options(hooks=[recorder])
    kuaishou_fake.inject(a.app_id, Fault.result(100200500))
    assert (await client.app_info(a)).app_name
    assert recorder.started == [("app_info", 1), ("app_info", 2)]
    first, second = recorder.ended
    assert (first.status, first.result_code, first.error_type) == (200, 100200500, "ServerError")
    assert (second.status, second.result_code, second.error_type) == (200, 1, None)
    assert first.start is not second.start
    for event in recorder.ended:
        assert event.start.method == "GET"
        assert event.app_id == a.app_id
        assert event.start.url == (
            f"{kuaishou_fake.base_url}/openapi/mp/auth/app/info"
            f"?component_app_id={kuaishou_fake.component_app_id}"
            "&authorizer_access_token=REDACTED"
        )
        assert event.duration > 0
        assert event.start.limiter_wait >= 0
        assert a.access_token not in repr(attrs.asdict(event))


async def test_hooks_see_a_transport_failure(kuaishou_fake: FakeKuaishou) -> None:
    a = auth(kuaishou_fake)
    recorder = Recorder()
    async with Client("c", base_url="http://127.0.0.1:9", retry=None, hooks=[recorder]) as client:
        with pytest.raises(TransportError):
            await client.app_info(a)
    (event,) = recorder.ended
    assert (event.status, event.result_code, event.error_type) == (None, None, "TransportError")
    assert event.outcome == "transport_error"


async def test_the_retry_gate_can_refuse_a_retry(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    gate = Gate(allow=False)
    kuaishou_client._pipeline.gate = gate
    kuaishou_fake.inject(a.app_id, Fault.result(100200500))
    with pytest.raises(ServerError):
        await kuaishou_client.app_info(a)
    assert gate.asked == [(a.app_id, "ServerError")]
    assert kuaishou_fake.counters["endpoint:app_info"] == 1


async def test_the_retry_gate_is_asked_only_when_the_policy_would_retry(
    kuaishou_fake: FakeKuaishou,
    make_client: MakeClient,
) -> None:
    a = auth(kuaishou_fake)
    gate = Gate(allow=True)
    policy = RetryPolicy(max_attempts=2, backoff_base=0.001)
    async with make_client(kuaishou_fake, retry=policy) as client:
        client._pipeline.gate = gate
        kuaishou_fake.inject(a.app_id, Fault.result(100200500), Fault.result(100200500))
        with pytest.raises(ServerError):
            await client.app_info(a)
    # Two attempts, one retry between them: the last failure ends the call without asking.
    assert gate.asked == [(a.app_id, "ServerError")]
    assert kuaishou_fake.counters["endpoint:app_info"] == 2


async def test_throttle_feedback_can_send_a_call_back_through_the_limiter(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    feedback = Readmit(times=1)
    client = kuaishou_client.with_options(retry=None)
    client._pipeline.throttle = feedback
    kuaishou_fake.inject(a.app_id, Fault.result(400002, "api限速"))
    assert (await client.app_info(a)).app_name  # no retries, yet the throttled call went on
    assert feedback.seen == [400002]


async def test_by_default_throttling_is_left_to_the_retry_policy(
    kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    a = auth(kuaishou_fake)
    kuaishou_fake.inject(a.app_id, Fault.result(400002, "api限速"))
    with pytest.raises(RateLimitedError):
        await kuaishou_client.with_options(retry=None).app_info(a)


async def test_with_options_shares_all_but_the_options(kuaishou_client: Client) -> None:
    copy = kuaishou_client.with_options(timeout=2, retry=None)
    original, copied = kuaishou_client._pipeline, copy._pipeline
    assert copied.holder is original.holder
    assert copied.limiter is original.limiter
    assert copied.timer_pool is original.timer_pool
    assert copied.policy == RetryPolicy.none()
    assert original.policy == fast_retry_policy()
    assert copied.timeouts.timeout.total == 2
    assert original.timeouts.timeout.total == 5.0
    assert copy.component_app_id == kuaishou_client.component_app_id
