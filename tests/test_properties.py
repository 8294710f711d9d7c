"""Property-based tests (hypothesis) of the pure wire layer.

* Whatever JSON (or other bytes) the platform answers, :func:`decode` returns the endpoint's
  model or raises one of our typed errors: never a bare ``TypeError``, ``KeyError``,
  ``RecursionError`` or cattrs exception, and never a model for an HTTP error status.
* Models survive ``unstructure`` -> ``structure`` and a trip through JSON bytes unchanged,
  unknown enum values included.
* :func:`validate_domain` never accepts whitespace, control characters or ``/?#@\\``, and
  never rejects an RFC 1123 host name (with or without a port).
* The scrubber masks a secret wherever it sits in a body, whatever spelling it travels in.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kuaishou_mp import (
    DEFAULT_ERROR_CODES,
    APIError,
    AppCategory,
    AppInfo,
    AppStatus,
    AuditInfo,
    AuditStatus,
    InvalidInputError,
    KuaishouError,
    ResponseValidationError,
    ServerDomains,
    Subject,
    SubjectType,
    TransportError,
    WebviewDomains,
    _json,
)
from kuaishou_mp._convert import structure, unstructure
from kuaishou_mp._endpoints import (
    APP_INFO,
    SERVER_DOMAIN,
    WEBVIEW_DOMAIN,
    Endpoint,
    decode,
    validate_domain,
)
from kuaishou_mp._scrub import excerpt, scrub

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ENDPOINTS = [APP_INFO, SERVER_DOMAIN, WEBVIEW_DOMAIN]
STATUSES = [200, 201, 204, 301, 400, 403, 404, 429, 500, 502, 503]
SECRET = "SECRET+tok/5f3a9c=="

# -- JSON documents ---------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def open_enum(cls: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(list(cls)) | st.integers(-(2**31), 2**31).map(cls)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a well-typed value, sometimes ``null``, sometimes any JSON at all."""
    return st.one_of(strategy, strategy, st.none(), json_values)


wire_audit = st.fixed_dictionaries(
    {},
    optional={
        "new_name": maybe(st.text(max_size=10)),
        "remaining_times": maybe(st.integers(0, 10)),
        "status": maybe(st.integers(-1, 5)),
        "reason": maybe(st.text(max_size=10)),
    },
)
wire_category = st.fixed_dictionaries(
    {},
    optional={
        "category_id": maybe(st.text(max_size=8)),
        "category_name": maybe(st.text(max_size=8)),
        "status": maybe(st.integers(-1, 5)),
        "reason": maybe(st.text(max_size=8)),
    },
)
WIRE_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "app_info": {
        "status": maybe(st.integers(0, 9)),
        "app_name": maybe(st.text(max_size=10)),
        "name_audit": maybe(wire_audit),
        "app_avatar": maybe(st.text(max_size=10)),
        "avatar_audit": maybe(wire_audit),
        "app_intro": maybe(st.text(max_size=10)),
        "intro_audit": maybe(wire_audit),
        "subject": maybe(
            st.fixed_dictionaries(
                {}, optional={"name": maybe(st.text()), "type": maybe(st.integers(0, 3))}
            )
        ),
        "app_category": maybe(st.lists(maybe(wire_category), max_size=3)),
    },
    "server_domain": {
        name: maybe(st.lists(maybe(st.text(max_size=12)), max_size=3))
        for name in ServerDomains.LISTS
    },
    "webview_domain": {"webview": maybe(st.lists(maybe(st.text(max_size=12)), max_size=3))},
}
results = st.sampled_from([1, 1, 1, 0, 2, 400002, 403106, 100200108, 100200500]) | json_values


@st.composite
def envelopes(draw: st.DrawFn, endpoint: Endpoint) -> dict[str, Any]:
    """Objects shaped like the platform's answers, each part possibly wrong."""
    doc: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                **WIRE_FIELDS[endpoint.name],
                "error_msg": maybe(st.text(max_size=20)),
                "errorMsg": maybe(st.text(max_size=20)),
                "unknown_field": json_values,
            },
        )
    )
    if draw(st.integers(0, 9)):
        doc["result"] = draw(results)
    return doc


def serialize(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def decode_checked(endpoint: Endpoint, status: int, body: bytes) -> None:
    """The property itself: a model (on a 2xx only) or one of our typed errors."""
    outcome = decode_outcome(endpoint, status, body)
    if isinstance(outcome, KuaishouError):
        assert isinstance(outcome, (APIError, TransportError, ResponseValidationError))
        text = f"{outcome} {outcome!r}"  # renders, and without the secret
        assert SECRET not in text
        assert outcome.__cause__ is None
        assert outcome.__context__ is None
        if isinstance(outcome, APIError):
            assert outcome.code != 1
        return
    assert type(outcome) is endpoint.model
    assert 200 <= status < 300
    # What was decoded is a model like any other: it round-trips.
    assert structure(unstructure(outcome), endpoint.model, endpoint=None, app_id=None) == outcome


def decode_outcome(endpoint: Endpoint, status: int, body: bytes) -> Any:
    """The decoded model or the KuaishouError raised; anything else propagates (and fails)."""
    try:
        return decode(
            endpoint,
            status,
            body,
            app_id="ks_app",
            error_codes=DEFAULT_ERROR_CODES,
            secrets=(SECRET,),
        )
    except KuaishouError as exc:
        return exc


@PROPERTY
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    status=st.sampled_from(STATUSES),
    value=json_values,
    ascii_only=st.booleans(),
)
def test_any_json_value_gives_a_model_or_a_typed_error(
    endpoint: Endpoint, status: int, value: Any, ascii_only: bool
) -> None:
    decode_checked(endpoint, status, serialize(value, ascii_only))


@PROPERTY
@given(data=st.data(), endpoint=st.sampled_from(ENDPOINTS), status=st.sampled_from(STATUSES))
def test_any_platform_shaped_answer_gives_a_model_or_a_typed_error(
    data: st.DataObject, endpoint: Endpoint, status: int
) -> None:
    doc = data.draw(envelopes(endpoint))
    decode_checked(endpoint, status, serialize(doc, data.draw(st.booleans())))


DEEP_ERROR_MSG = b'{"result": 100200500, "error_msg": ' + b"[" * 1000 + b"]" * 1000 + b"}"


@PROPERTY
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    status=st.sampled_from(STATUSES),
    body=st.binary(max_size=64),
)
@example(endpoint=APP_INFO, status=200, body=DEEP_ERROR_MSG)  # str() of it recursed too deep
@example(endpoint=APP_INFO, status=200, body=b"[" * 100_000)
@example(endpoint=APP_INFO, status=200, body=b'{"result": 1, "status": 1e400}')
def test_any_bytes_give_a_model_or_a_typed_error(
    endpoint: Endpoint, status: int, body: bytes
) -> None:
    decode_checked(endpoint, status, body)


@PROPERTY
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    code=st.integers(min_value=-(2**63), max_value=2**63).filter(lambda c: c != 1),
    message=json_values,
    spelling=st.sampled_from([SECRET, quote(SECRET, safe=""), json.dumps(SECRET)[1:-1]]),
)
def test_an_error_answer_keeps_its_code_and_never_echoes_the_secret(
    endpoint: Endpoint, code: int, message: Any, spelling: str
) -> None:
    text = f"refused {spelling} {message}" if isinstance(message, str) else message
    body = _json.dumps({"result": code, "error_msg": text})
    with pytest.raises(APIError) as info:
        decode(endpoint, 200, body, app_id="a", error_codes=DEFAULT_ERROR_CODES, secrets=(SECRET,))
    assert info.value.code == code
    assert type(info.value) is DEFAULT_ERROR_CODES.get(code, APIError)
    assert SECRET not in str(info.value)
    assert spelling not in str(info.value)


# -- models round-trip ------------------------------------------------------------------------

texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
audits = st.builds(
    AuditInfo,
    new_name=texts,
    remaining_times=st.none() | st.integers(-(2**31), 2**31),
    status=st.none() | open_enum(AuditStatus),
    reason=texts,
)
app_infos = st.builds(
    AppInfo,
    status=st.none() | open_enum(AppStatus),
    app_name=texts,
    name_audit=st.none() | audits,
    app_avatar=texts,
    avatar_audit=st.none() | audits,
    app_intro=texts,
    intro_audit=st.none() | audits,
    subject=st.none() | st.builds(Subject, name=texts, type=st.none() | open_enum(SubjectType)),
    app_category=st.lists(
        st.builds(
            AppCategory,
            category_id=texts,
            category_name=texts,
            status=st.none() | open_enum(AuditStatus),
            reason=texts,
        ),
        max_size=3,
    ).map(tuple),
)
domain_lists = st.lists(texts, max_size=4).map(tuple)
server_domains = st.builds(ServerDomains, **dict.fromkeys(ServerDomains.LISTS, domain_lists))
webview_domains = st.builds(WebviewDomains, webview=domain_lists)
MODEL_ENDPOINT = {AppInfo: APP_INFO, ServerDomains: SERVER_DOMAIN, WebviewDomains: WEBVIEW_DOMAIN}


@PROPERTY
@given(model=app_infos | server_domains | webview_domains)
def test_models_survive_structure_unstructure_and_json(model: Any) -> None:
    cls = type(model)
    plain = unstructure(model)
    assert structure(plain, cls, endpoint=None, app_id=None) == model
    # Unknown enum values stay themselves (not a member, not a failure).
    again = structure(plain, cls, endpoint=None, app_id=None)
    assert unstructure(again) == plain
    # And through the wire, as the platform would send it.
    body = _json.dumps({"result": 1, "error_msg": "success", **plain})
    decoded = decode(MODEL_ENDPOINT[cls], 200, body, app_id="a", error_codes=DEFAULT_ERROR_CODES)
    assert decoded == model


# -- the domain validator ---------------------------------------------------------------------

LDH = string.ascii_letters + string.digits
labels = st.builds(
    lambda first, middle, last: first + middle + last if middle or last else first,
    st.sampled_from(LDH),
    st.text(alphabet=LDH + "-", max_size=61),
    st.sampled_from(LDH) | st.just(""),
).filter(lambda label: not label.endswith("-"))
host_names = st.lists(labels, min_size=1, max_size=6).map(".".join).filter(lambda h: len(h) <= 253)
WHITESPACE = (
    " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
forbidden_chars = (
    st.sampled_from("/?#@\\")
    | st.sampled_from(WHITESPACE)
    | st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp"))
)


@PROPERTY
@given(host=host_names)
def test_valid_host_names_are_accepted(host: str) -> None:
    assert validate_domain(host, "request[0]") == host
    assert validate_domain(host.upper(), "request[0]") == host.upper()


@PROPERTY
@given(host=host_names, port=st.integers(1, 65535))
def test_valid_host_names_with_a_port_are_accepted(host: str, port: int) -> None:
    assert validate_domain(f"{host}:{port}", "socket[0]") == f"{host}:{port}"


@PROPERTY
@given(host=host_names, bad=forbidden_chars, at=st.integers(0, 260))
def test_forbidden_characters_are_refused_anywhere(host: str, bad: str, at: int) -> None:
    domain = host[:at] + bad + host[at:]
    with pytest.raises(InvalidInputError) as info:
        validate_domain(domain, "webview[3]")
    assert isinstance(info.value, ValueError)
    assert "webview[3]" in str(info.value)


@PROPERTY
@given(
    scheme=st.sampled_from(["http://", "https://", "wss://", "//"]),
    host=host_names,
    tail=st.sampled_from(["", "/", "/path", "?q=1", "#frag"]),
    user=st.sampled_from(["", "user@", "u:p@"]),
)
def test_urls_are_refused(scheme: str, host: str, tail: str, user: str) -> None:
    with pytest.raises(InvalidInputError):
        validate_domain(f"{scheme}{user}{host}{tail}", "request[0]")


ports = st.text(alphabet="0123456789²٣", max_size=7) | st.integers(0, 99999).map(str)


@PROPERTY
@given(
    domain=st.text(max_size=300)
    | st.text(alphabet=LDH + ".-:²٣", max_size=40)
    | st.builds("{}:{}".format, host_names, ports)
)
@example(domain="example.com:²")  # str.isdigit() but not for int()
@example(domain="example.com:٣")  # str.isdigit() and int() == 3, but not a port
@example(domain="example.com:" + "9" * 5000)  # past int()'s digit limit
def test_whatever_is_accepted_is_a_bare_host(domain: str) -> None:
    """Over arbitrary text: the validator either refuses with our typed error, or what it
    accepted has none of the forbidden parts."""
    try:
        accepted = validate_domain(domain, "x")
    except InvalidInputError:
        return
    assert accepted == domain
    assert all(ch.isprintable() and not ch.isspace() for ch in domain)
    assert not set(domain) & set("/?#@\\")
    host, sep, port = domain.rpartition(":")
    if sep:
        assert host
        assert port.isascii()
        assert port.isdigit()
        assert 0 < int(port) < 65536
    assert len(host or domain) <= 253


# -- scrubbing --------------------------------------------------------------------------------

secrets_ = st.text(alphabet=string.ascii_uppercase + string.digits + "+/=_-.~", min_size=12)
padding = st.text(alphabet=string.ascii_lowercase + " \n\t<>,;:", max_size=2000)


def spellings(secret: str) -> list[str]:
    """As it is, percent-encoded (upper- and lower-case escapes), JSON-escaped."""
    encoded = quote(secret, safe="")
    lower = re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)
    return [secret, encoded, lower, json.dumps(secret)[1:-1]]


@PROPERTY
@given(secret=secrets_, before=padding, after=padding, which=st.integers(0, 3))
def test_a_secret_never_survives_an_excerpt_whole_or_in_part(
    secret: str, before: str, after: str, which: int
) -> None:
    spelled = spellings(secret)[which]
    body = f"{before}{spelled}{after}".encode()
    text = excerpt(body, (secret,))
    assert len(text) <= 160
    for i in range(len(secret) - 7):
        assert secret[i : i + 8] not in text
    for i in range(len(spelled) - 7):
        assert spelled[i : i + 8] not in text


@PROPERTY
@given(secret=secrets_, before=padding, after=padding, which=st.integers(0, 3))
def test_scrub_masks_every_spelling(secret: str, before: str, after: str, which: int) -> None:
    spelled = spellings(secret)[which]
    text = scrub(f"{before}{spelled}{after}", (secret,))
    assert secret not in text
    assert spelled not in text
    assert text.startswith(before)
