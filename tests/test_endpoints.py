"""The pure wire layer: input validation, request bodies, response decoding and error mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kuaishou_mp import (
    DEFAULT_ERROR_CODES,
    APIError,
    AppInfo,
    AppStatus,
    AuditStatus,
    AuthError,
    BadRequestError,
    DomainAction,
    DomainNotFoundError,
    InvalidInputError,
    KuaishouError,
    RateLimitedError,
    RefreshTokenExpiredError,
    ResponseValidationError,
    ServerDomains,
    ServerError,
    SubjectType,
    TokenExpiredError,
    TransportError,
    WebviewDomains,
)
from kuaishou_mp._endpoints import (
    APP_INFO,
    SERVER_DOMAIN,
    WEBVIEW_DOMAIN,
    decode,
    domain_body,
    parse_action,
    validate_domain,
)

SPEC_APP_INFO: dict[str, Any] = {
    "result": 1,
    "error_msg": "success",
    "status": 2,
    "app_name": "xxx小程序",
    "name_audit": {"new_name": "xxx1小程序", "remaining_times": 2, "status": 0, "reason": ""},
    "app_avatar": "http://xxxx.png",
    "avatar_audit": {
        "new_name": "http://xxxx.png",
        "remaining_times": 1,
        "status": 1,
        "reason": "",
    },
    "app_intro": "xxx",
    "intro_audit": {"new_name": "xxx", "remaining_times": 5, "status": 1, "reason": ""},
    "subject": {"name": "xxx", "type": 1},
    "app_category": [
        {"category_id": "1,10", "category_name": "电商-家具", "status": 1, "reason": ""},
        {"category_id": "1,11", "category_name": "电商-母婴", "status": 2, "reason": ""},
    ],
}


def _decode(endpoint: Any, doc: Any, status: int = 200) -> Any:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return decode(endpoint, status, body, app_id="ks1", error_codes=DEFAULT_ERROR_CODES)


def test_spec_app_info_example_parses_to_its_values() -> None:
    info = _decode(APP_INFO, SPEC_APP_INFO)
    assert isinstance(info, AppInfo)
    assert info.status is AppStatus.ONLINE
    assert info.app_name == "xxx小程序"
    assert info.name_audit is not None
    assert info.name_audit.new_name == "xxx1小程序"
    assert info.name_audit.remaining_times == 2
    assert info.name_audit.status is AuditStatus.IN_REVIEW
    assert info.avatar_audit is not None
    assert info.avatar_audit.status is AuditStatus.APPROVED
    assert info.intro_audit is not None
    assert info.intro_audit.remaining_times == 5
    assert info.app_avatar == "http://xxxx.png"
    assert info.app_intro == "xxx"
    assert info.subject is not None
    assert info.subject.type is SubjectType.ENTERPRISE
    assert [c.category_id for c in info.app_category] == ["1,10", "1,11"]
    assert info.app_category[1].status is AuditStatus.REJECTED
    assert info.app_category[0].id_path == ("1", "10")
    assert info.app_category[0].name_path == ("电商", "家具")


def test_spec_domain_examples_parse() -> None:
    doc = {
        "result": 1,
        "error_msg": "sucess",
        "request": ["***.com"],
        "socket": ["***.com"],
        "upload_file": ["***.com"],
        "download_file": ["***.com"],
        "udp": ["***.com"],
    }
    assert _decode(SERVER_DOMAIN, doc) == ServerDomains(*(["***.com"],) * 5)
    assert _decode(WEBVIEW_DOMAIN, {"result": 1, "error_msg": "sucess", "webview": ["xx.com"]}) == (
        WebviewDomains(webview=("xx.com",))
    )


def test_forward_compatible_parsing() -> None:
    doc = {
        "result": 1,
        "status": 9,
        "brand_new_field": {"x": 1},
        "name_audit": None,
        "subject": {"name": "s", "type": 7, "extra": True},
        "app_category": [{"category_id": "3", "status": 42}],
    }
    info = _decode(APP_INFO, doc)
    assert int(info.status) == 9
    assert info.status.name == "UNKNOWN_9"
    assert not info.status.is_known
    assert AppStatus.ONLINE.is_known
    assert info.name_audit is None
    assert info.avatar_audit is None
    assert info.app_name == ""
    assert int(info.subject.type) == 7
    assert int(info.app_category[0].status) == 42
    # The action field the page lists in the server-domain response is tolerated; missing
    # and null lists become empty.
    domains = _decode(SERVER_DOMAIN, {"result": 1, "action": "get", "request": None})
    assert domains == ServerDomains()


def test_null_string_never_becomes_the_string_none() -> None:
    info = _decode(APP_INFO, {"result": 1, "app_name": None, "app_intro": None})
    assert info.app_name == ""
    assert info.app_intro == ""


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"result": 1, "request": "a.com"}, "$.request"),
        ({"result": 1, "request": ["a.com", 3]}, "$.request[1]"),
        ({"result": 1, "udp": {"a": 1}}, "$.udp"),
    ],
)
def test_shape_errors_name_the_field_path(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(ResponseValidationError) as info:
        _decode(SERVER_DOMAIN, doc)
    assert any(path in line for line in info.value.errors)
    assert path in str(info.value)
    assert info.value.endpoint == "server_domain"
    assert info.value.__cause__ is None


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"result": 1, "app_name": 5}, "$.app_name"),
        ({"result": 1, "status": "2"}, "$.status"),
        ({"result": 1, "status": True}, "$.status"),
        ({"result": 1, "app_category": "x"}, "$.app_category"),
        ({"result": 1, "app_category": [{"status": "x"}]}, "$.app_category[0].status"),
        ({"result": 1, "name_audit": [1]}, "$.name_audit"),
        ({"result": 1, "name_audit": {"remaining_times": "3"}}, "$.name_audit.remaining_times"),
    ],
)
def test_app_info_shape_errors(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(ResponseValidationError) as info:
        _decode(APP_INFO, doc)
    assert any(line.endswith(path) for line in info.value.errors), info.value.errors


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (403106, DomainNotFoundError),
        (100200100, BadRequestError),
        (1026, BadRequestError),
        (100200101, AuthError),
        (100200102, AuthError),
        (100200108, TokenExpiredError),
        (100200113, RefreshTokenExpiredError),
        (400002, RateLimitedError),
        (100100402, RateLimitedError),
        (100200500, ServerError),
        (400003, ServerError),
        (123456, APIError),
    ],
)
def test_error_codes_map_to_classes(code: int, cls: type[APIError]) -> None:
    with pytest.raises(APIError) as info:
        _decode(WEBVIEW_DOMAIN, {"result": code, "error_msg": "boom"})
    assert type(info.value) is cls
    assert info.value.code == code
    assert info.value.message == "boom"
    assert info.value.app_id == "ks1"
    assert info.value.endpoint == "webview_domain"
    assert str(code) in str(info.value)


def test_token_expired_is_an_auth_error() -> None:
    assert issubclass(TokenExpiredError, AuthError)
    assert issubclass(APIError, KuaishouError)
    assert issubclass(InvalidInputError, ValueError)


def test_camel_case_error_message_is_read() -> None:
    with pytest.raises(APIError) as info:
        _decode(APP_INFO, {"result": 5, "errorMsg": "camel"})
    assert info.value.message == "camel"


def test_error_table_can_be_overridden() -> None:
    table = {**DEFAULT_ERROR_CODES, 123: ServerError, 403106: APIError}
    with pytest.raises(ServerError):
        decode(APP_INFO, 200, b'{"result":123}', app_id=None, error_codes=table)
    with pytest.raises(APIError) as info:
        decode(APP_INFO, 200, b'{"result":403106}', app_id=None, error_codes=table)
    assert type(info.value) is APIError


def test_404_with_json_result_is_bad_request() -> None:
    with pytest.raises(BadRequestError) as info:
        _decode(APP_INFO, {"result": 1026, "error_msg": "[1026] 404 NOT FOUND"}, status=404)
    assert info.value.http_status == 404


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (502, b"<html><body>Bad gateway</body></html>"),
        (500, b'{"result": 1}'),
        (200, b"<html>maintenance</html>"),
        (200, b'{"result": 1, "app_na'),
        (200, b"\xff\xfe\xfa not utf-8"),
        (200, b"[" * 100_000),
    ],
)
def test_non_json_answers_are_transport_errors(status: int, body: bytes) -> None:
    with pytest.raises(TransportError) as info:
        decode(APP_INFO, status, body, app_id="a", error_codes=DEFAULT_ERROR_CODES)
    assert info.value.status == status
    assert info.value.body_excerpt is not None
    assert len(info.value.body_excerpt) <= 160


@pytest.mark.parametrize("body", [b"[1, 2]", b'"x"', b"null", b'{"result": "1"}', b"{}"])
def test_json_of_the_wrong_shape_is_a_validation_error(body: bytes) -> None:
    with pytest.raises(ResponseValidationError):
        decode(APP_INFO, 200, body, app_id="a", error_codes=DEFAULT_ERROR_CODES)


def test_excerpt_is_scrubbed() -> None:
    body = b"<html>authorizer_access_token=SECRETSECRET and SECRETSECRET</html>"
    with pytest.raises(TransportError) as info:
        decode(
            APP_INFO,
            500,
            body,
            app_id="a",
            error_codes=DEFAULT_ERROR_CODES,
            secrets=("SECRETSECRET",),
        )
    assert "SECRETSECRET" not in str(info.value)


# -- requests -------------------------------------------------------------------------------------


def test_action_parsing() -> None:
    assert parse_action("add") is DomainAction.ADD
    assert parse_action(DomainAction.GET) is DomainAction.GET
    assert str(DomainAction.SET) == "set"
    for bad in ("ADD", "remove", "", 3):
        with pytest.raises(InvalidInputError, match="unknown domain action"):
            parse_action(bad)  # type: ignore[arg-type]


def test_bodies() -> None:
    assert domain_body(SERVER_DOMAIN, "get", {}) == {"action": "get"}
    assert domain_body(SERVER_DOMAIN, DomainAction.ADD, {"request": ["a.com"], "udp": None}) == {
        "action": "add",
        "request": ["a.com"],
    }
    assert domain_body(SERVER_DOMAIN, "set", {"socket": []}) == {"action": "set", "socket": []}
    assert domain_body(WEBVIEW_DOMAIN, "delete", {"webview": ("x.com",)}) == {
        "action": "delete",
        "webview": ["x.com"],
    }


def test_body_refusals() -> None:
    with pytest.raises(InvalidInputError, match="'get' sends no domain lists"):
        domain_body(SERVER_DOMAIN, "get", {"request": ["a.com"]})
    with pytest.raises(InvalidInputError, match="needs at least one domain list"):
        domain_body(SERVER_DOMAIN, "add", {"request": None})
    with pytest.raises(InvalidInputError, match="not a single string"):
        domain_body(WEBVIEW_DOMAIN, "add", {"webview": "a.com"})


@pytest.mark.parametrize(
    "domain",
    [
        "example.com",
        "a.b.example.com",
        "xn--fiqs8s.cn",
        "例子.中国",
        "*.example.com",
        "h:8080",
        "x",
    ],
)
def test_valid_domains_pass(domain: str) -> None:
    assert validate_domain(domain, "request[0]") == domain


@pytest.mark.parametrize(
    ("domain", "reason"),
    [
        ("", "empty"),
        (" example.com", "whitespace"),
        ("exa mple.com", "whitespace"),
        ("example.com\n", "whitespace"),
        ("exa\x00mple.com", "control"),
        ("https://example.com", "'/'"),
        ("example.com/path", "'/'"),
        ("example.com?q=1", "'?'"),
        ("example.com#frag", "'#'"),
        ("user@example.com", "'@'"),
        ("http:example.com", "port"),
        ("example.com:http", "port"),
        ("example.com:0", "port"),
        ("a" * 254, "253"),
        (5, "expected a string"),
    ],
)
def test_invalid_domains_are_refused(domain: Any, reason: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_domain(domain, "request[3]")
    assert "request[3]" in str(info.value)
    assert reason in str(info.value)
