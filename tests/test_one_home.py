"""One home for each vocabulary: every exception in ``errors.py`` with its tree, and one
spelling for closing."""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

import kuaishou_mp
from kuaishou_mp import (
    Authorizer,
    Client,
    ConnectionLimits,
    InvalidInputError,
    RateLimit,
    RetryBudget,
    RetryPolicy,
    ServerDomains,
    Timeout,
    WebviewDomains,
    errors,
)
from kuaishou_mp._transport import DEFAULT_MAX_RESPONSE_BYTES
from kuaishou_mp._validate import instance, integer, number, text
from kuaishou_mp.auth import AuthClient, RedisTokenStorage
from kuaishou_mp.domains import DomainCaller
from kuaishou_mp.redis import RedisLimiter
from kuaishou_mp.testing import SERVER_DOMAIN_KEYS, FakeKuaishou

if TYPE_CHECKING:
    from conftest import MakeFake


def _classes_of(module: object) -> dict[str, type[BaseException]]:
    return {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException)
    }


def _tree() -> dict[str, str]:
    """Each class in the docstring's tree, with its parent by indentation."""
    doc = errors.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^[\s│├└─]*([A-Z]\w+Error)\b", line)
        if match is None:
            continue
        name = match.group(1)
        depth = match.start(1)  # the column: deeper classes are drawn further right
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_every_sdk_exception_is_defined_in_errors() -> None:
    stray = set()
    for name in dir(kuaishou_mp):
        obj = getattr(kuaishou_mp, name)
        sdk_error = inspect.isclass(obj) and issubclass(obj, errors.KuaishouError)
        if sdk_error and obj.__module__ != "kuaishou_mp.errors":
            stray.add(f"{obj.__module__}.{name}")
    for module in ("tokens", "redis", "auth", "auth.storage"):
        mod = __import__(f"kuaishou_mp.{module}", fromlist=["_"])
        for name, cls in _classes_of(mod).items():
            if issubclass(cls, errors.KuaishouError) and cls.__module__ != "kuaishou_mp.errors":
                stray.add(f"{cls.__module__}.{name}")
    assert stray == set()


def test_the_docstring_tree_names_every_class_under_its_parent() -> None:
    tree = _tree()
    defined = {
        name: cls
        for name, cls in _classes_of(errors).items()
        if cls.__module__ == "kuaishou_mp.errors" and issubclass(cls, errors.KuaishouError)
    }
    assert set(tree) | {"KuaishouError"} == set(defined)
    for name, parent in tree.items():
        assert defined[name].__mro__[1].__name__ == parent, name


def test_the_tree_reader_reads_parents_by_column() -> None:
    # The checker itself can fail: it reads each parent from where the class is drawn.
    tree = _tree()
    assert tree["TokenExpiredError"] == "AuthError"
    assert tree["LockTimeoutError"] == "TokenUnavailableError"
    assert tree["APIError"] == "KuaishouError"


def test_errors_keep_their_old_import_paths() -> None:
    from kuaishou_mp.auth.storage import LockTimeoutError, TokenStorageError
    from kuaishou_mp.redis import LimiterUnavailableError
    from kuaishou_mp.tokens import TokenUnavailableError

    assert LockTimeoutError is errors.LockTimeoutError
    assert TokenStorageError is errors.TokenStorageError
    assert LimiterUnavailableError is errors.LimiterUnavailableError
    assert (
        TokenUnavailableError is errors.TokenUnavailableError is kuaishou_mp.TokenUnavailableError
    )


def test_invalid_input_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="x must be positive"):
        raise errors.InvalidInputError("x must be positive")


@pytest.mark.parametrize("cls", [Client, AuthClient])
async def test_aclose_is_the_spelling_and_close_its_alias(
    make_fake: MakeFake, cls: type[object]
) -> None:
    fake = await make_fake()
    args = (fake.component_app_id,) if cls is Client else (fake.component_app_id, "secret")
    first = cls(*args, base_url=fake.base_url)  # type: ignore[call-arg]
    await first.aclose()  # type: ignore[attr-defined]
    assert first.closed  # type: ignore[attr-defined]
    second = cls(*args, base_url=fake.base_url)  # type: ignore[call-arg]
    await second.close()  # type: ignore[attr-defined]
    assert second.closed  # type: ignore[attr-defined]


# -- one spelling of the domain lists ----------------------------------------------------------


def _keyword_only(func: Callable[..., object]) -> tuple[str, ...]:
    return tuple(
        name
        for name, p in inspect.signature(func).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    )


@pytest.mark.parametrize(
    ("model", "single", "bulk", "protocol"),
    [
        (
            ServerDomains,
            Client.server_domain,
            Client.bulk_server_domain,
            DomainCaller.server_domain,
        ),
        (
            WebviewDomains,
            Client.webview_domain,
            Client.bulk_webview_domain,
            DomainCaller.webview_domain,
        ),
    ],
)
def test_the_domain_methods_take_exactly_the_model_lists(
    model: type[ServerDomains | WebviewDomains],
    single: Callable[..., object],
    bulk: Callable[..., object],
    protocol: Callable[..., object],
) -> None:
    # A list added to the model but forgotten in a signature fails here.
    assert _keyword_only(single) == model.LISTS
    assert _keyword_only(protocol) == model.LISTS
    assert _keyword_only(bulk) == _keyword_only(Client.bulk_app_info) + model.LISTS
    assert SERVER_DOMAIN_KEYS == ServerDomains.LISTS


@pytest.mark.parametrize("name", ServerDomains.LISTS)
async def test_each_server_list_reaches_its_own_list(
    name: str, kuaishou_fake: FakeKuaishou, kuaishou_client: Client
) -> None:
    app = kuaishou_fake.add_authorizer("ks_lists")
    a = Authorizer(app.app_id, app.access_token)
    before = {each: list(app.server_domains[each]) for each in ServerDomains.LISTS}
    one: dict[str, Any] = {name: ["one.example.com"]}
    two: dict[str, Any] = {name: ["two.example.com"]}
    got = await kuaishou_client.server_domain(a, "add", **one)
    (result,) = [r async for r in kuaishou_client.bulk_server_domain([a], "add", **two)]
    assert result.value is not None
    for each in ServerDomains.LISTS:
        mine = each == name
        after_one = before[each] + ["one.example.com"] * mine
        assert list(getattr(got, each)) == after_one, each
        assert list(getattr(result.value, each)) == after_one + ["two.example.com"] * mine, each


# -- one validation helper ----------------------------------------------------------------------

BAD_SETTINGS: list[tuple[Callable[[], object], str]] = [
    (lambda: RateLimit(per_authorizer_qps=0), "RateLimit.per_authorizer_qps"),
    (lambda: RateLimit(global_qps=math.inf), "RateLimit.global_qps"),
    (lambda: RateLimit(burst=0), "RateLimit.burst"),
    (lambda: RateLimit(burst=True), "RateLimit.burst"),
    (lambda: RateLimit(slow_factor=1.0), "RateLimit.slow_factor"),
    (lambda: RateLimit(recovery_step=1.0), "RateLimit.recovery_step"),
    (lambda: RetryPolicy(max_attempts=0), "RetryPolicy.max_attempts"),
    (lambda: RetryPolicy(backoff_base=-1), "RetryPolicy.backoff_base"),
    (lambda: RetryPolicy(deadline=math.nan), "RetryPolicy.deadline"),
    (lambda: Timeout(total=0), "Timeout.total"),
    (lambda: Timeout(connect="1"), "Timeout.connect"),  # type: ignore[arg-type]
    (lambda: RetryBudget(ratio=-0.1), "RetryBudget.ratio"),
    (lambda: RetryBudget(window=0), "RetryBudget.window"),
    (lambda: Client("ks_c", timeout=-1), "Timeout.total"),
    (lambda: ConnectionLimits(max_connections=0), "ConnectionLimits.max_connections"),
    (lambda: ConnectionLimits(max_connections=1.5), "ConnectionLimits.max_connections"),  # type: ignore[arg-type]
    (lambda: ConnectionLimits(keepalive_timeout=-5), "ConnectionLimits.keepalive_timeout"),
    (lambda: ConnectionLimits(keepalive_timeout=math.nan), "ConnectionLimits.keepalive_timeout"),
    (lambda: ConnectionLimits(dns_cache_ttl=-1), "ConnectionLimits.dns_cache_ttl"),
    (lambda: Client("ks_c", max_response_bytes=-1), "max_response_bytes"),
    (lambda: Client("ks_c", max_response_bytes="x"), "max_response_bytes"),  # type: ignore[arg-type]
    (lambda: AuthClient("ks_c", "s", max_response_bytes=0), "max_response_bytes"),
    (lambda: RedisTokenStorage.from_url("http://h"), "url"),
    (lambda: RedisTokenStorage.from_url(None), "url"),  # type: ignore[arg-type]
    (lambda: RedisLimiter.from_url("h:6379", RateLimit(), component_app_id="c"), "url"),
]


@pytest.mark.parametrize(("make", "name"), BAD_SETTINGS, ids=[n for _, n in BAD_SETTINGS])
def test_every_configuration_object_refuses_a_bad_value_by_name(
    make: Callable[[], object], name: str
) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(name)) as caught:
        make()
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("value", "rule", "ok"),
    [
        (1, {}, True),
        (0, {}, False),
        (0, {"low_ok": True}, True),
        (-0.5, {"low": -1.0}, True),
        (1.0, {"high": 1.0}, False),
        (1.0, {"high": 1.0, "high_ok": True}, True),
        (math.inf, {}, False),
        (math.inf, {"finite": False}, True),
        (math.nan, {"finite": False}, False),
        (None, {}, False),
        (None, {"none_ok": True}, True),
        (True, {}, False),
        ("1", {}, False),
    ],
)
def test_number(value: object, rule: dict[str, Any], ok: bool) -> None:
    if ok:
        number("X.y", value, **rule)
    else:
        with pytest.raises(InvalidInputError, match=r"^X\.y must be .*, got "):
            number("X.y", value, **rule)


def test_number_says_the_rule() -> None:
    with pytest.raises(InvalidInputError, match=r"X\.y must be a finite number in \(0, 1\], got 2"):
        number("X.y", 2, high=1.0, high_ok=True)
    with pytest.raises(InvalidInputError, match=r"X\.y must be a finite number > 0 or None"):
        number("X.y", -1, none_ok=True)


@pytest.mark.parametrize(
    ("value", "ok"), [(1, True), (5, True), (0, False), (True, False), (1.0, False)]
)
def test_integer(value: object, ok: bool) -> None:
    if ok:
        integer("X.n", value)
    else:
        with pytest.raises(InvalidInputError, match=r"X\.n must be an integer >= 1"):
            integer("X.n", value)


@pytest.mark.parametrize(
    ("value", "rule", "ok"),
    [
        ("a", {}, True),
        (" ", {}, True),
        ("", {}, False),
        (None, {}, False),
        (b"a", {}, False),
        (" a ", {"blank_ok": False}, True),
        (" \t", {"blank_ok": False}, False),
    ],
)
def test_text(value: object, rule: dict[str, Any], ok: bool) -> None:
    if ok:
        text("X.s", value, **rule)
    else:
        with pytest.raises(InvalidInputError, match=r"^X\.s must be a non-(empty|blank) string"):
            text("X.s", value, **rule)


def test_a_secret_text_is_never_shown() -> None:
    with pytest.raises(InvalidInputError, match=r"X\.s must be .*, got bytes$"):
        text("X.s", b"hunter2", secret=True)
    with pytest.raises(InvalidInputError) as caught:
        AuthClient("ks_c", b"hunter2")  # type: ignore[arg-type]
    assert "component_app_secret" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(InvalidInputError, match="component_app_id must be a non-blank"):
        Client("  ")
    with pytest.raises(InvalidInputError, match=r"^X\.s must be a non-empty string, got ''$"):
        text("X.s", "", secret=True)  # an empty secret holds nothing to hide


@pytest.mark.parametrize(
    "url",
    [
        b"redis://:hunter2@localhost:6379/0",
        "redis://:hun/ter2@localhost:6379/0",
        "redis://:hun#ter2@localhost:6379/0",
        "redis://:hun'ter/2@localhost:6379/0",
    ],
)
@pytest.mark.parametrize("owner", ["RedisTokenStorage", "RedisLimiter"])
def test_a_malformed_redis_url_never_shows_its_password(url: object, owner: str) -> None:
    # An unescaped "/" or "#" in a password ends the host part: redis-py then quotes a piece
    # of the password as the port it cannot read.
    def open_url() -> object:
        if owner == "RedisLimiter":
            return RedisLimiter.from_url(url, RateLimit(), component_app_id="c")  # type: ignore[arg-type]
        return RedisTokenStorage.from_url(url)  # type: ignore[arg-type]

    with pytest.raises(InvalidInputError, match=r"^url") as caught:
        open_url()
    assert "hun" not in str(caught.value), caught.value


def test_a_redis_url_error_still_names_the_option() -> None:
    # redis-py 5.0 quotes the option's name with backticks, later versions with quotes.
    with pytest.raises(InvalidInputError, match=r"[`']socket_timeout[`']"):
        RedisTokenStorage.from_url("redis://:hunter2@localhost:6379/0?socket_timeout=x")


def test_instance() -> None:
    instance("X.r", RateLimit(), RateLimit)
    with pytest.raises(InvalidInputError, match=r"^X\.r must be a RateLimit, got dict$"):
        instance("X.r", {}, RateLimit)
    with pytest.raises(InvalidInputError, match=r"^X\.a must be an AuthClient, got str$"):
        instance("X.a", "auth", AuthClient)


@pytest.mark.parametrize("cls", [Client, AuthClient])
def test_the_documented_response_limit_is_the_default(cls: type[object]) -> None:
    default = inspect.signature(cls).parameters["max_response_bytes"].default
    assert default == DEFAULT_MAX_RESPONSE_BYTES == 1048576
    assert "the default is 1 MiB (1048576 bytes)" in " ".join((cls.__doc__ or "").split())


def test_connection_limits_keep_their_documented_edges() -> None:
    assert ConnectionLimits(max_connections=1, keepalive_timeout=0, dns_cache_ttl=0)
    assert ConnectionLimits() == ConnectionLimits(1000, 30.0, 300)


def test_default_is_a_documented_sentinel_meaning_left_out() -> None:
    assert repr(kuaishou_mp.DEFAULT) == "DEFAULT"
    for func in (Client.__init__, Client.with_options, AuthClient.__init__):
        defaults = {p.default for p in inspect.signature(func).parameters.values()}
        assert all("_UNSET" not in repr(d) and "object at" not in repr(d) for d in defaults)
    # Passed explicitly, it means what leaving the argument out means.
    explicit = Client("ks_c", rate_limit=kuaishou_mp.DEFAULT, retry=kuaishou_mp.DEFAULT)
    implicit = Client("ks_c")
    assert explicit._pipeline.policy == implicit._pipeline.policy
    assert type(explicit._pipeline.limiter) is type(implicit._pipeline.limiter)
