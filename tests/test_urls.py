"""The request URLs assembled from a base URL split once (kuaishou_mp._urls)."""

from __future__ import annotations

import pytest
from yarl import URL

from kuaishou_mp import Client
from kuaishou_mp._urls import BaseURL
from kuaishou_mp.auth import AuthClient
from kuaishou_mp.errors import InvalidInputError

PATH = "/openapi/mp/auth/app/info"
QUERY = "component_app_id=ks%2Bc&authorizer_access_token=a%26b%3Dc"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:8080", f"http://127.0.0.1:8080{PATH}?{QUERY}"),
        ("https://open.kuaishou.com/", f"https://open.kuaishou.com{PATH}?{QUERY}"),
        ("http://gateway.internal/kuaishou/", f"http://gateway.internal/kuaishou{PATH}?{QUERY}"),
        ("http://[::1]:9000", f"http://[::1]:9000{PATH}?{QUERY}"),
        ("http://h:80", f"http://h{PATH}?{QUERY}"),
        ("https://user:pw@h:8443/p", f"https://user:pw@h:8443/p{PATH}?{QUERY}"),
    ],
)
def test_join_matches_parsing_the_whole_url(base_url: str, expected: str) -> None:
    url = BaseURL(base_url).join(PATH, QUERY)
    assert str(url) == expected
    # What aiohttp reads from the URL is what a full parse of the same text gives.
    parsed = URL(expected, encoded=True)
    for part in ("scheme", "raw_host", "port", "raw_path", "raw_query_string", "query"):
        assert getattr(url, part) == getattr(parsed, part), part


def test_the_query_is_taken_as_encoded_not_encoded_again() -> None:
    url = BaseURL("http://h").join(PATH, QUERY)
    assert url.query["authorizer_access_token"] == "a&b=c"
    assert url.query["component_app_id"] == "ks+c"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://",
        "http://:80",
        "http://h:99999",
        "http://h:port",
        "http://h?x=1",
        "http://h/#f",
        "http://h?",
    ],
)
def test_a_base_url_that_cannot_take_a_path_is_refused(base_url: str) -> None:
    with pytest.raises(InvalidInputError, match="base_url") as info:
        BaseURL(base_url)
    assert base_url in str(info.value)


def test_a_password_in_the_base_url_is_not_repeated() -> None:
    with pytest.raises(InvalidInputError) as info:
        BaseURL("http://user:hunter2@h?x=1")
    assert "hunter2" not in str(info.value)
    assert "http://***@h?x=1" in str(info.value)
    client = Client("c", base_url="http://user:hunter2@h:8080/p/")
    assert "hunter2" not in repr(client)
    assert "http://***@h:8080/p " in repr(client)


@pytest.mark.parametrize("base_url", ["ftp://user:hunter2@h", b"http://user:hunter2@h"])
@pytest.mark.parametrize("cls", [Client, AuthClient])
def test_a_password_in_a_refused_scheme_or_type_is_not_repeated(
    cls: type[object], base_url: object
) -> None:
    args = ("c",) if cls is Client else ("c", "s")
    with pytest.raises(InvalidInputError, match="base_url") as info:
        cls(*args, base_url=base_url)  # type: ignore[call-arg]
    assert "hunter2" not in str(info.value)


def test_the_auth_client_refuses_it_too() -> None:
    with pytest.raises(InvalidInputError, match="base_url"):
        AuthClient("c", "s", base_url="http://h?x=1")
