"""Canary: a planted token must appear in no message, repr, chain, traceback or log record."""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING

import pytest

from kuaishou_mp import Authorizer, Client, KuaishouError, RetryPolicy, Timeout
from kuaishou_mp.testing import FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import MakeClient

CANARY = "CANARY_tok_5f3a9c1e7b2d"


def _all_text(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), repr(vars(seen)) if hasattr(seen, "__dict__") else ""]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


FAULTS = {
    "api_error": Fault.result(100200500),
    "http_500": Fault.http(500),
    "html_200": Fault.raw(
        f"<html>echo authorizer_access_token={CANARY}</html>".encode(), content_type="text/html"
    ),
    "echo_500": Fault.http(500, body=f"<p>{CANARY}</p>".encode()),
    "timeout": Fault.hang(10),
    "malformed": Fault.malformed(),
    "dropped": Fault.drop(),
    "wrong_shape": Fault.raw(b'{"result": 1, "app_name": 5}'),
    "huge": Fault.huge(2_000_000),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_canary_never_leaks(
    fault: str,
    kuaishou_fake: FakeKuaishou,
    caplog: pytest.LogCaptureFixture,
    make_client: MakeClient,
) -> None:
    kuaishou_fake.add_authorizer("ks_canary", CANARY)
    # Four copies: aiohttp itself resends an idempotent GET once after a dropped connection.
    kuaishou_fake.inject("ks_canary", *([FAULTS[fault]] * 4))
    authorizer = Authorizer("ks_canary", CANARY)
    assert CANARY not in repr(authorizer)
    assert CANARY not in str(authorizer)
    with caplog.at_level(logging.DEBUG):
        async with make_client(
            kuaishou_fake,
            timeout=Timeout(total=0.3),
            retry=RetryPolicy(max_attempts=2, backoff_base=0.001),
        ) as client:
            with pytest.raises(KuaishouError) as info:
                await client.app_info(authorizer)
    assert CANARY not in _all_text(info.value)
    for record in caplog.records:
        assert CANARY not in record.getMessage()
        assert CANARY not in repr(record.__dict__)


async def test_canary_connection_refused(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        async with Client(
            "c",
            base_url="http://127.0.0.1:9",
            retry=RetryPolicy(max_attempts=2, backoff_base=0.001),
        ) as client:
            with pytest.raises(KuaishouError) as info:
                await client.server_domain(Authorizer("a", CANARY), "get")
    assert CANARY not in _all_text(info.value)
    assert all(CANARY not in repr(r.__dict__) for r in caplog.records)


class _LeakyProvider:
    """A token provider that fails while another exception (with the canary) is handled."""

    async def get_token(self, app_id: str) -> str:
        from kuaishou_mp import TokenUnavailableError

        try:
            raise ConnectionRefusedError(f"redis://:{CANARY}@store:6379 refused")
        except OSError:
            raise TokenUnavailableError("token store down", app_id=app_id)  # noqa: B904

    async def invalidate(self, app_id: str, token: str) -> None:
        return None


async def test_errors_leave_the_sdk_without_an_implicit_context() -> None:
    """The exception being handled when one of ours is raised is not chained to it.

    On Python 3.10 under a task written in Python, the exception that woke the task stays
    "being handled" for the whole step (aiohttp's connect error, URL included); this test
    makes the same situation on every Python.
    """
    async with Client("c", base_url="http://127.0.0.1:9", token_provider=_LeakyProvider()) as c:
        with pytest.raises(KuaishouError) as info:
            await c.app_info("ks_app")
    assert info.value.__context__ is None
    assert CANARY not in _all_text(info.value)
