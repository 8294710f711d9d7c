"""The fake platform, driven over real loopback HTTP with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from kuaishou_mp.testing import (
    APP_INFO_PATH,
    SERVER_DOMAIN_KEYS,
    SERVER_DOMAIN_PATH,
    WEBVIEW_DOMAIN_PATH,
    FakeAuthorizer,
    FakeKuaishou,
    Fault,
)

_UNSET: Any = object()


class Api:
    """Thin raw-HTTP caller; returns (HTTP status, parsed JSON body or raw non-JSON bytes)."""

    def __init__(self, fake: FakeKuaishou, session: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.session = session

    def params(self, token: str | None, component: str | None = _UNSET) -> dict[str, str]:
        params: dict[str, str] = {}
        component = self.fake.component_app_id if component is _UNSET else component
        if component is not None:
            params["component_app_id"] = component
        if token is not None:
            params["authorizer_access_token"] = token
        return params

    async def request(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        body: Any = _UNSET,
        data: bytes | None = None,
        component: str | None = _UNSET,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"params": self.params(token, component)}
        if body is not _UNSET:
            kwargs["json"] = body
        if data is not None:
            kwargs["data"] = data
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        async with self.session.request(method, self.fake.base_url + path, **kwargs) as resp:
            raw = await resp.read()
            return resp.status, json.loads(raw) if resp.content_type == "application/json" else raw

    async def server(self, token: str | None, body: Any, **kw: Any) -> Any:
        status, doc = await self.request("POST", SERVER_DOMAIN_PATH, token, body=body, **kw)
        assert status == 200
        return doc

    async def webview(self, token: str | None, body: Any, **kw: Any) -> Any:
        status, doc = await self.request("POST", WEBVIEW_DOMAIN_PATH, token, body=body, **kw)
        assert status == 200
        return doc

    async def info(self, token: str | None, **kw: Any) -> Any:
        status, doc = await self.request("GET", APP_INFO_PATH, token, **kw)
        assert status == 200
        return doc


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


@pytest.fixture
async def fake() -> AsyncIterator[FakeKuaishou]:
    async with FakeKuaishou() as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def api(fake: FakeKuaishou, session: aiohttp.ClientSession) -> Api:
    return Api(fake, session)


@pytest.fixture
def app(fake: FakeKuaishou) -> FakeAuthorizer:
    return fake.add_authorizer()


# --------------------------------------------------------------------------- endpoints


async def test_app_info_default_document_has_the_spec_shape(api: Api, app: FakeAuthorizer) -> None:
    doc = await api.info(app.access_token)
    assert doc["result"] == 1
    assert doc["error_msg"] == "success"
    assert doc["status"] == 2
    assert doc["app_name"] == f"小程序 {app.app_id}"
    for audit in ("name_audit", "avatar_audit", "intro_audit"):
        assert set(doc[audit]) == {"new_name", "remaining_times", "status", "reason"}
    assert doc["subject"]["type"] == 1
    assert isinstance(doc["subject"]["name"], str)
    assert [c["category_id"] for c in doc["app_category"]] == ["1,10", "1,11"]
    assert set(doc["app_category"][0]) == {"category_id", "category_name", "status", "reason"}
    assert {k: v for k, v in doc.items() if k not in ("result", "error_msg")} == app.info


async def test_set_info_is_answered_as_is(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    fake.set_info(app.app_id, {"status": 9, "brand_new_field": [1, {"x": None}]})
    doc = await api.info(app.access_token)
    assert doc == {
        "result": 1,
        "error_msg": "success",
        "status": 9,
        "brand_new_field": [1, {"x": None}],
    }


async def test_server_domain_get_returns_all_five_lists(api: Api, app: FakeAuthorizer) -> None:
    doc = await api.server(app.access_token, {"action": "get"})
    assert doc["result"] == 1
    assert {k: doc[k] for k in SERVER_DOMAIN_KEYS} == app.server_domains
    assert len(doc["request"]) == 2


async def test_add_appends_missing_domains_in_order_without_duplicates(
    api: Api, fake: FakeKuaishou
) -> None:
    app = fake.add_authorizer(server_domains={"request": ["a.com"]})
    doc = await api.server(
        app.access_token,
        {"action": "add", "request": ["b.com", "a.com", "c.com", "b.com"], "udp": ["u.com"]},
    )
    assert doc["result"] == 1
    assert doc["request"] == ["a.com", "b.com", "c.com"]
    assert doc["udp"] == ["u.com"]
    assert doc["socket"] == doc["upload_file"] == doc["download_file"] == []
    assert app.server_domains["request"] == ["a.com", "b.com", "c.com"]


async def test_delete_removes_listed_domains(api: Api, fake: FakeKuaishou) -> None:
    app = fake.add_authorizer(
        server_domains={"request": ["a.com", "b.com", "c.com"], "udp": ["u.com"]}
    )
    doc = await api.server(app.access_token, {"action": "delete", "request": ["c.com", "a.com"]})
    assert doc["result"] == 1
    assert doc["request"] == ["b.com"]
    assert doc["udp"] == ["u.com"]


async def test_delete_of_an_absent_domain_answers_403106_and_changes_nothing(
    api: Api, fake: FakeKuaishou
) -> None:
    app = fake.add_authorizer(server_domains={"request": ["a.com", "b.com"], "socket": ["s.com"]})
    doc = await api.server(
        app.access_token, {"action": "delete", "request": ["a.com"], "socket": ["nope.com"]}
    )
    assert doc == {"result": 403106, "error_msg": "domain not exist"}
    assert app.server_domains["request"] == ["a.com", "b.com"]
    assert app.server_domains["socket"] == ["s.com"]


async def test_set_replaces_present_lists_and_keeps_omitted_ones(
    api: Api, fake: FakeKuaishou
) -> None:
    app = fake.add_authorizer(server_domains={"request": ["a.com"], "socket": ["s.com"]})
    doc = await api.server(
        app.access_token, {"action": "set", "request": ["x.com", "y.com", "x.com"], "udp": []}
    )
    assert doc["result"] == 1
    assert doc["request"] == ["x.com", "y.com"]
    assert doc["socket"] == ["s.com"]
    assert doc["udp"] == []


async def test_webview_actions(api: Api, fake: FakeKuaishou) -> None:
    app = fake.add_authorizer(webview_domains=["w1.com"])
    token = app.access_token
    assert await api.webview(token, {"action": "get"}) == {
        "result": 1,
        "error_msg": "sucess",
        "webview": ["w1.com"],
    }
    assert (await api.webview(token, {"action": "add", "webview": ["w2.com", "w1.com"]}))[
        "webview"
    ] == ["w1.com", "w2.com"]
    missing = await api.webview(token, {"action": "delete", "webview": ["w1.com", "zz.com"]})
    assert missing == {"result": 403106, "error_msg": "domain not exist"}
    assert (await api.webview(token, {"action": "delete", "webview": ["w1.com"]}))["webview"] == [
        "w2.com"
    ]
    assert (await api.webview(token, {"action": "set", "webview": ["n.com"]}))["webview"] == [
        "n.com"
    ]
    assert app.webview_domains == ["n.com"]


async def test_default_webview_domains_are_not_empty(api: Api, app: FakeAuthorizer) -> None:
    doc = await api.webview(app.access_token, {"action": "get"})
    assert len(doc["webview"]) == 2


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"action": "replace"},
        {"action": 1},
        {"action": "add", "request": "a.com"},
        {"action": "add", "request": ["a.com", 3]},
        {"action": "set", "socket": None},
        ["action", "get"],
        "get",
    ],
)
async def test_malformed_server_domain_bodies_answer_100200100(
    api: Api, app: FakeAuthorizer, body: Any
) -> None:
    before = {k: list(v) for k, v in app.server_domains.items()}
    doc = await api.server(app.access_token, body)
    assert doc["result"] == 100200100
    assert app.server_domains == before


@pytest.mark.parametrize("data", [b"", b"{not json", b"\xff\xfe", b"[" * 5000])
async def test_unparsable_bodies_answer_100200100(
    api: Api, app: FakeAuthorizer, data: bytes
) -> None:
    status, doc = await api.request("POST", SERVER_DOMAIN_PATH, app.access_token, data=data)
    assert (status, doc["result"]) == (200, 100200100)


async def test_webview_rejects_non_string_lists(api: Api, app: FakeAuthorizer) -> None:
    doc = await api.webview(app.access_token, {"action": "add", "webview": [None]})
    assert doc["result"] == 100200100


# --------------------------------------------------------------------------- auth errors


async def test_missing_query_parameters_answer_100200100(api: Api, app: FakeAuthorizer) -> None:
    assert (await api.info(None))["result"] == 100200100
    assert (await api.info(app.access_token, component=None))["result"] == 100200100


async def test_wrong_component_answers_100200101(api: Api, app: FakeAuthorizer) -> None:
    assert (await api.info(app.access_token, component="someone_else"))["result"] == 100200101


async def test_unknown_token_answers_100200102(api: Api, app: FakeAuthorizer) -> None:
    assert (await api.info("not-a-token"))["result"] == 100200102
    assert (await api.server("not-a-token", {"action": "get"}))["result"] == 100200102


async def test_expired_token_answers_100200108(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    fake.expire_token(app.app_id)
    assert app.token_expired
    assert (await api.info(app.access_token))["result"] == 100200108


async def test_rotate_token_expires_the_old_one(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    old = app.access_token
    fake.expire_token(app.app_id)
    new = fake.rotate_token(app.app_id)
    assert new != old
    assert app.access_token == new
    assert (await api.info(new))["result"] == 1
    assert (await api.info(old))["result"] == 100200108
    assert fake.rotate_token(app.app_id, "chosen-token") == "chosen-token"
    assert (await api.info("chosen-token"))["result"] == 1
    assert (await api.info(new))["result"] == 100200108


async def test_revoked_token_stays_refused_after_rotation(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    old = app.access_token
    fake.revoke_token(app.app_id)
    assert (await api.info(old))["result"] == 100200102
    new = fake.rotate_token(app.app_id)
    assert (await api.info(new))["result"] == 1
    assert (await api.info(old))["result"] == 100200102


async def test_unknown_path_is_http_404_with_1026(api: Api, app: FakeAuthorizer) -> None:
    status, doc = await api.request("GET", "/openapi/mp/auth/app/nope", app.access_token)
    assert status == 404
    assert doc == {"result": 1026, "error_msg": "[1026] 404 NOT FOUND"}


async def test_wrong_method_on_known_path_is_405(api: Api, app: FakeAuthorizer) -> None:
    status, _ = await api.request("GET", SERVER_DOMAIN_PATH, app.access_token)
    assert status == 405
    status, _ = await api.request("POST", APP_INFO_PATH, app.access_token, body={})
    assert status == 405


# --------------------------------------------------------------------------- faults


async def test_http_fault_sends_an_html_error_page(
    fake: FakeKuaishou, session: aiohttp.ClientSession, app: FakeAuthorizer
) -> None:
    fake.inject(app.app_id, Fault.http(502))
    api = Api(fake, session)
    async with session.get(fake.base_url + APP_INFO_PATH, params=api.params(app.access_token)) as r:
        assert r.status == 502
        assert r.content_type == "text/html"
        assert "502 Bad Gateway" in await r.text()
    assert (await api.info(app.access_token))["result"] == 1


async def test_result_fault_and_fail_next(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    fake.inject(app.app_id, Fault.result(400003, "boom"))
    fake.fail_next(app.app_id, 100200500, times=2)
    assert await api.info(app.access_token) == {"result": 400003, "error_msg": "boom"}
    assert (await api.info(app.access_token))["result"] == 100200500
    assert (await api.info(app.access_token))["result"] == 100200500
    assert (await api.info(app.access_token))["result"] == 1


async def test_drop_closes_the_connection_without_a_response(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    fake.inject(app.app_id, Fault.drop())
    # POST: aiohttp silently retries an idempotent GET once on a dropped connection.
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.server(app.access_token, {"action": "add", "request": ["new.com"]})
    assert "new.com" not in app.server_domains["request"]
    assert fake.counters["drop"] == 1
    assert (await api.server(app.access_token, {"action": "get"}))["result"] == 1


async def test_hang_times_the_client_out_and_leaves_no_state(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    fake.inject(app.app_id, Fault.hang())
    with pytest.raises(asyncio.TimeoutError):
        await api.server(app.access_token, {"action": "set", "request": []}, timeout=0.2)
    assert app.server_domains["request"] != []
    assert fake.counters["hang"] == 1
    assert (await api.info(app.access_token))["result"] == 1


async def test_short_hang_answers_after_the_hold(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    fake.inject(app.app_id, Fault.hang(0.1))
    started = time.monotonic()
    assert (await api.info(app.access_token))["result"] == 1
    assert time.monotonic() - started >= 0.1
    assert fake.requests[-1].outcome == "hang"


async def test_delay_answers_normally_after_the_delay(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    fake.inject(app.app_id, Fault.delay(0.15))
    started = time.monotonic()
    doc = await api.server(app.access_token, {"action": "add", "socket": ["s.com"]})
    assert time.monotonic() - started >= 0.15
    assert doc["socket"] == ["s.com"]
    assert fake.requests[-1].outcome == "ok"


async def test_malformed_sends_truncated_json(
    fake: FakeKuaishou, session: aiohttp.ClientSession, app: FakeAuthorizer
) -> None:
    fake.inject(app.app_id, Fault.malformed())
    url = fake.base_url + APP_INFO_PATH
    async with session.get(url, params=Api(fake, session).params(app.access_token)) as r:
        assert r.status == 200
        assert r.content_type == "application/json"
        raw = await r.read()
    assert raw == b'{"result": 1, "app_na'
    with pytest.raises(ValueError, match=r"Unterminated|Expecting"):
        json.loads(raw)
    assert fake.counters["malformed"] == 1


@pytest.mark.parametrize(
    ("body", "status", "content_type"),
    [
        (b"\xff\xfe\xfa", 200, "application/json"),
        (b"<html>ok</html>", 200, "text/html"),
        (b"[1, 2, 3]", 200, "application/json"),
        (b"[" * 10_000 + b"]" * 10_000, 200, "application/json"),
        (b'{"result": 1}', 418, "application/json"),
    ],
)
async def test_raw_fault_sends_exact_bytes(
    fake: FakeKuaishou,
    session: aiohttp.ClientSession,
    app: FakeAuthorizer,
    body: bytes,
    status: int,
    content_type: str,
) -> None:
    fake.inject(app.app_id, Fault.raw(body, status=status, content_type=content_type))
    url = fake.base_url + APP_INFO_PATH
    async with session.get(url, params=Api(fake, session).params(app.access_token)) as r:
        assert r.status == status
        assert r.content_type == content_type
        assert await r.read() == body
    assert fake.requests[-1].outcome == "raw"


async def test_huge_streams_valid_json_of_the_exact_size(
    fake: FakeKuaishou, session: aiohttp.ClientSession, app: FakeAuthorizer
) -> None:
    size = 3 * 65536 + 123
    fake.inject(app.app_id, Fault.huge(size))
    url = fake.base_url + APP_INFO_PATH
    async with session.get(url, params=Api(fake, session).params(app.access_token)) as r:
        assert r.content_length == size
        raw = await r.read()
    assert len(raw) == size
    assert json.loads(raw)["result"] == 1
    with pytest.raises(ValueError, match="size_bytes"):
        Fault.huge(10)


async def test_endless_body_never_ends(
    fake: FakeKuaishou, session: aiohttp.ClientSession, app: FakeAuthorizer
) -> None:
    fake.inject(app.app_id, Fault.endless())
    url = fake.base_url + APP_INFO_PATH
    received = 0
    async with session.get(url, params=Api(fake, session).params(app.access_token)) as r:
        assert r.status == 200
        assert r.content_length is None
        async for chunk in r.content.iter_any():
            received += len(chunk)
            if received > 64 * 1024:
                break
        else:
            pytest.fail("the endless body ended")
        r.close()
    assert received > 64 * 1024
    # The streaming handler notices the client left and stops holding the task.
    await until(lambda: not fake._held)


async def test_endless_read_times_out(api: Api, fake: FakeKuaishou, app: FakeAuthorizer) -> None:
    fake.inject(app.app_id, Fault.endless())
    with pytest.raises(asyncio.TimeoutError):
        await api.info(app.access_token, timeout=0.2)


async def test_global_queue_is_consumed_first_by_any_request(api: Api, fake: FakeKuaishou) -> None:
    a, b = fake.add_authorizers(2)
    fake.fail_next(a.app_id, 400003, error_msg="a-queue")
    fake.fail_next(None, 400002, times=2, error_msg="global")
    assert await api.info(b.access_token) == {"result": 400002, "error_msg": "global"}
    # Global faults apply even before the token is looked at.
    assert await api.info("unknown") == {"result": 400002, "error_msg": "global"}
    assert fake.pending_global_faults == ()
    assert await api.info(a.access_token) == {"result": 400003, "error_msg": "a-queue"}
    assert (await api.info(a.access_token))["result"] == 1
    assert (await api.info(b.access_token))["result"] == 1


async def test_each_request_consumes_at_most_one_fault(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    fake.inject(None, Fault.result(7))
    fake.inject(app.app_id, Fault.result(8))
    assert (await api.info(app.access_token))["result"] == 7
    assert app.pending_faults == (Fault.result(8),)
    assert (await api.info(app.access_token))["result"] == 8
    fake.inject(app.app_id, Fault.result(9))
    fake.clear_faults(app.app_id)
    assert (await api.info(app.access_token))["result"] == 1


async def test_per_app_faults_fire_for_a_rotated_out_token(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    old = app.access_token
    fake.rotate_token(app.app_id)
    fake.fail_next(app.app_id, 400003)
    assert (await api.info(old))["result"] == 400003
    assert (await api.info(old))["result"] == 100200108


def test_fault_constructors_validate() -> None:
    with pytest.raises(ValueError, match="status"):
        Fault.http(42)
    with pytest.raises(ValueError, match="seconds"):
        Fault.delay(-1)
    with pytest.raises(ValueError, match="seconds"):
        Fault.hang(float("inf"))
    assert Fault.http(503, "down").body == b"down"
    assert Fault.http(500).outcome == "http:500"
    assert Fault.result(5).outcome == "result:5"
    assert Fault.drop().outcome == "drop"


# --------------------------------------------------------------------------- chaos


def test_chaos_assigns_kinds_in_proportion_and_reproducibly() -> None:
    fake = FakeKuaishou()
    fake.add_authorizers(2000)
    probabilities = {
        "http_5xx": 0.1,
        "drop": 0.05,
        "hang": 0.05,
        "rate_limited": 0.1,
        "malformed_json": 0.05,
        "invalid_token": 0.15,
    }
    assigned = fake.chaos(**probabilities, seed=42)
    for kind, p in probabilities.items():
        count = sum(1 for k in assigned.values() if k == kind)
        expected = 2000 * p
        # ~4.5 standard deviations of the binomial.
        assert abs(count - expected) < 4.5 * (expected * (1 - p)) ** 0.5, kind
    assert 0.45 * 2000 < len(assigned) < 0.55 * 2000

    for app_id, auth in fake.authorizers.items():
        got = assigned.get(app_id)
        if got is None or got == "invalid_token":
            assert auth.pending_faults == ()
            assert auth.token_revoked == (got == "invalid_token")
            continue
        kind = got
        (fault,) = auth.pending_faults
        expected_kind = {
            "http_5xx": "http",
            "drop": "drop",
            "hang": "hang",
            "rate_limited": "result",
            "malformed_json": "malformed",
        }[kind]
        assert fault.kind == expected_kind
        if kind == "http_5xx":
            assert 500 <= fault.status <= 599
        if kind == "rate_limited":
            assert fault.code == 400002

    again = FakeKuaishou()
    again.add_authorizers(2000)
    assert again.chaos(**probabilities, seed=42) == assigned
    assert again.chaos(**probabilities, seed=43) != assigned


def test_chaos_rejects_bad_probabilities() -> None:
    fake = FakeKuaishou()
    fake.add_authorizers(3)
    with pytest.raises(ValueError, match="sum"):
        fake.chaos(drop=0.6, hang=0.6)
    with pytest.raises(ValueError, match="within"):
        fake.chaos(drop=-0.1)
    assert fake.chaos() == {}
    assert set(fake.chaos(drop=1.0).values()) == {"drop"}


async def test_chaos_transient_fault_fails_only_the_first_request(
    api: Api, fake: FakeKuaishou
) -> None:
    apps = fake.add_authorizers(4)
    assigned = fake.chaos(rate_limited=1.0, seed=1)
    assert assigned == dict.fromkeys((a.app_id for a in apps), "rate_limited")
    for app in apps:
        assert await api.info(app.access_token) == {"result": 400002, "error_msg": "api限速"}
        assert (await api.info(app.access_token))["result"] == 1


async def test_chaos_invalid_token_is_permanent(api: Api, fake: FakeKuaishou) -> None:
    (app,) = fake.add_authorizers(1)
    assert fake.chaos(invalid_token=1.0) == {app.app_id: "invalid_token"}
    for _ in range(2):
        assert (await api.info(app.access_token))["result"] == 100200102


# --------------------------------------------------------------------------- rate limit


async def test_qps_limit_answers_400002_inside_the_window_and_recovers(
    api: Api, fake: FakeKuaishou
) -> None:
    a, b = fake.add_authorizers(2)
    fake.qps_limit = 3
    fake.qps_window = 0.5
    results = [(await api.info(a.access_token))["result"] for _ in range(5)]
    assert results == [1, 1, 1, 400002, 400002]
    # Per app: another mini-program is not affected.
    assert (await api.info(b.access_token))["result"] == 1
    await asyncio.sleep(0.55)
    assert (await api.info(a.access_token))["result"] == 1
    fake.qps_limit = None
    assert all([(await api.info(a.access_token))["result"] == 1 for _ in range(5)])
    assert fake.counters["result:400002"] == 2


async def test_default_qps_window_is_one_second(api: Api, fake: FakeKuaishou) -> None:
    app = fake.add_authorizer()
    fake.qps_limit = 2
    assert [(await api.info(app.access_token))["result"] for _ in range(3)] == [1, 1, 400002]
    assert fake.qps_window == 1.0


def test_max_in_window_uses_half_open_windows() -> None:
    fake = FakeKuaishou()
    app = fake.add_authorizer()
    assert fake.max_in_window(app.app_id) == 0
    app._arrivals = [0.0, 0.5, 0.99, 1.0, 1.5, 1.98]
    assert fake.max_in_window(app.app_id) == 4  # [0.99, 1.99)
    assert fake.max_in_window(app.app_id, window=0.5) == 2
    assert fake.max_in_window(app.app_id, window=0.01) == 1
    assert fake.max_in_window(app.app_id, window=2.0) == 6
    with pytest.raises(KeyError):
        fake.max_in_window("nobody")


async def test_arrivals_are_recorded_per_app(api: Api, fake: FakeKuaishou) -> None:
    a, b = fake.add_authorizers(2)
    before = time.monotonic()
    for _ in range(3):
        await api.info(a.access_token)
    await api.server(b.access_token, {"action": "get"})
    after = time.monotonic()
    arrivals = fake.arrivals(a.app_id)
    assert len(arrivals) == 3
    assert arrivals == sorted(arrivals)
    assert before <= arrivals[0]
    assert arrivals[-1] <= after
    assert fake.max_in_window(a.app_id, window=after - before + 1) == 3
    assert len(fake.arrivals(b.app_id)) == 1


# --------------------------------------------------------------------------- records


async def test_counters_and_records(api: Api, fake: FakeKuaishou, app: FakeAuthorizer) -> None:
    await api.info(app.access_token)
    await api.server(app.access_token, {"action": "delete", "udp": ["zz.com"]})
    await api.webview("bogus", {"action": "get"})
    await api.request("GET", "/nowhere", app.access_token)
    fake.inject(app.app_id, Fault.http(503))
    status, page = await api.request("POST", WEBVIEW_DOMAIN_PATH, app.access_token, body={})
    assert status == 503
    assert b"503" in page

    assert fake.counters["requests"] == 5
    assert fake.counters["ok"] == 1
    assert fake.counters["result:403106"] == 1
    assert fake.counters["result:100200102"] == 1
    assert fake.counters["http:404"] == 1
    assert fake.counters["http:503"] == 1
    assert fake.counters["endpoint:app_info"] == 1
    assert fake.counters["endpoint:server_domain"] == 1
    assert fake.counters["endpoint:webview_domain"] == 2
    assert fake.counters["endpoint:not_found"] == 1

    outcomes = [r.outcome for r in fake.requests]
    assert outcomes == ["ok", "result:403106", "result:100200102", "http:404", "http:503"]
    info, delete, bogus, missing, gateway = fake.requests
    assert (info.method, info.path, info.body, info.app_id) == (
        "GET",
        APP_INFO_PATH,
        None,
        app.app_id,
    )
    assert info.query == {
        "component_app_id": fake.component_app_id,
        "authorizer_access_token": app.access_token,
    }
    assert delete.body == {"action": "delete", "udp": ["zz.com"]}
    assert bogus.app_id is None
    assert missing.path == "/nowhere"
    assert gateway.app_id == app.app_id
    ats = [r.at for r in fake.requests]
    assert ats == sorted(ats)

    fake.reset_records()
    assert fake.requests == []
    assert not fake.counters
    assert fake.arrivals(app.app_id) == []


async def test_unparsable_body_is_recorded_as_text(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    await api.request("POST", SERVER_DOMAIN_PATH, app.access_token, data=b"not json")
    assert fake.requests[-1].body == "not json"
    assert fake.requests[-1].outcome == "result:100200100"


async def test_counters_are_kept_without_recording(session: aiohttp.ClientSession) -> None:
    async with FakeKuaishou(record_requests=False) as fake:
        app = fake.add_authorizer()
        api = Api(fake, session)
        for _ in range(3):
            await api.info(app.access_token)
        assert fake.requests == []
        assert fake.arrivals(app.app_id) == []
        assert fake.counters["requests"] == fake.counters["ok"] == 3


# --------------------------------------------------------------------------- lifecycle


async def test_stop_with_a_hanging_request_in_flight_is_prompt(
    session: aiohttp.ClientSession,
) -> None:
    fake = FakeKuaishou()
    base_url = await fake.start()
    assert base_url == fake.base_url
    assert base_url.startswith("http://127.0.0.1:")
    app = fake.add_authorizer()
    fake.inject(app.app_id, Fault.hang(), Fault.endless())
    api = Api(fake, session)
    hanging = asyncio.create_task(api.info(app.access_token))
    streaming = asyncio.create_task(api.info(app.access_token))
    await until(lambda: fake.counters["requests"] >= 2)
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 2.0
    with pytest.raises(aiohttp.ClientError):
        await hanging
    with pytest.raises(aiohttp.ClientError):
        await streaming
    await fake.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = fake.base_url


async def test_latency_delays_every_request(
    api: Api, fake: FakeKuaishou, app: FakeAuthorizer
) -> None:
    fake.latency = 0.1
    started = time.monotonic()
    assert (await api.info(app.access_token))["result"] == 1
    assert time.monotonic() - started >= 0.1


async def fetch(session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> bytes:
    async with session.get(url, params=params) as resp:
        return await resp.read()


async def test_app_works_with_aiohttp_test_server(session: aiohttp.ClientSession) -> None:
    fake = FakeKuaishou(component_app_id="tp_1")
    app = fake.add_authorizer("mp_1", "tok_1")
    fake.inject("mp_1", Fault.hang())
    async with TestServer(fake.app) as server:
        url = str(server.make_url(APP_INFO_PATH))
        params = {"component_app_id": "tp_1", "authorizer_access_token": app.access_token}
        hanging = asyncio.create_task(fetch(session, url, params))
        await until(lambda: fake.counters["requests"] >= 1)
        async with session.get(url, params=params) as resp:
            assert (await resp.json())["app_name"] == "小程序 mp_1"
        started = time.monotonic()
    # TestServer.close() reaches the fake's on_shutdown hook, which cancels the hang.
    assert time.monotonic() - started < 2.0
    with pytest.raises(aiohttp.ClientError):
        await hanging


async def test_start_twice_is_an_error(fake: FakeKuaishou) -> None:
    with pytest.raises(RuntimeError):
        await fake.start()


# --------------------------------------------------------------------------- authorizers


def test_add_authorizer_defaults_and_errors() -> None:
    fake = FakeKuaishou()
    first = fake.add_authorizer()
    second = fake.add_authorizer()
    assert (first.app_id, second.app_id) == ("ks00000001", "ks00000002")
    assert len(first.access_token) >= 32
    assert first.access_token != second.access_token
    assert fake.authorizer("ks00000001") is first
    with pytest.raises(KeyError):
        fake.authorizer("nope")
    with pytest.raises(ValueError, match="already"):
        fake.add_authorizer("ks00000001")
    with pytest.raises(ValueError, match="already"):
        fake.add_authorizer("other", first.access_token)
    with pytest.raises(ValueError, match="unknown"):
        fake.add_authorizer(server_domains={"requests": ["typo.com"]})
    custom = fake.add_authorizer(
        "mp_x", "tok_x", info={"status": 3}, server_domains={"udp": ["u.com"]}, webview_domains=[]
    )
    assert custom.info == {"status": 3}
    assert custom.server_domains == {
        "request": [],
        "socket": [],
        "upload_file": [],
        "download_file": [],
        "udp": ["u.com"],
    }
    assert custom.webview_domains == []
    assert "tok_x" not in repr(custom)


def test_add_authorizers_is_fast_unique_and_continues_numbering() -> None:
    fake = FakeKuaishou()
    fake.add_authorizer("ks00000003")
    # How fast this is belongs to the benchmarks (they register 200,000), not to a timed test.
    apps = fake.add_authorizers(200_000)
    assert len(apps) == 200_000
    assert apps[0].app_id == "ks00000001"
    assert "ks00000003" not in {a.app_id for a in apps[:5]}
    assert len({a.app_id for a in apps}) == len({a.access_token for a in apps}) == 200_000
    assert len(fake.authorizers) == 200_001
    more = fake.add_authorizers(2)
    assert more[0].app_id == "ks00200002"
    assert [a.app_id for a in fake.add_authorizers(2, prefix="tt")] == ["tt00000001", "tt00000002"]


def test_seeded_tokens_are_reproducible() -> None:
    def tokens(seed: int | None) -> list[str]:
        fake = FakeKuaishou(seed=seed)
        return [a.access_token for a in fake.add_authorizers(5)] + [
            fake.add_authorizer().access_token
        ]

    assert tokens(7) == tokens(7)
    assert tokens(7) != tokens(8)
    assert tokens(None) != tokens(None)


def test_authorizer_state_is_generated_per_app() -> None:
    fake = FakeKuaishou()
    a, b = fake.add_authorizers(2)
    assert a.info["app_name"] != b.info["app_name"]
    assert a.server_domains["request"] != b.server_domains["request"]
    a.webview_domains = ["x.com"]
    assert a.webview_domains == ["x.com"]
    a.server_domains = {"request": ["r.com"]}
    assert a.server_domains["socket"] == []


def test_authorizers_view_is_read_only() -> None:
    fake = FakeKuaishou()
    fake.add_authorizer()
    view: Mapping[str, FakeAuthorizer] = fake.authorizers
    with pytest.raises(TypeError):
        view["x"] = fake.add_authorizer()  # type: ignore[index]
