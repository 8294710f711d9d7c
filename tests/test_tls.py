"""TLS: certificate verification is on by default; turning it off is explicit and warns.

A fake platform served over HTTPS with a self-signed certificate (embedded below, valid until
2126, for ``localhost`` and ``127.0.0.1``): the default client refuses it, a client whose
session trusts that certificate accepts it (so the refusal is verification, not a broken
server), and ``verify_ssl=False`` connects only after a ``UserWarning``.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web
from hardening_support import connector_of

from kuaishou_mp import Authorizer, Client, InvalidInputError, RetryPolicy, TransportError
from kuaishou_mp.testing import FakeKuaishou

if TYPE_CHECKING:
    from conftest import MakeClient

CERT = """-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUUH2BsbbThsHrgTOPPPHhNRgBkMkwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyOTA4Mzc0N1oYDzIxMjYxMTA1
MDgzNzQ3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATkkvdOwsKPwsdytsALamuOaqXTb/x2Q4d94Oy2Rh/ev2ep5IIPdiT9
U7HcNGnXuREHRI9Gy/DkfcPy9CqUJF4so28wbTAdBgNVHQ4EFgQUy6/OwTzKJaPx
le4edX22cR6LfGEwHwYDVR0jBBgwFoAUy6/OwTzKJaPxle4edX22cR6LfGEwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDRwAwRAIgPo+jRZnOmfthkolTYuCDmTRUXhFoFQ5mcso3lyEyf48CIAVw
H6O8NFD/EBEfWsKNYClTGx4eHjiioktgGCbaDiSm
-----END CERTIFICATE-----
"""
KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOH/TY/6HpzyLM5+J
r5AHienzZSW6hGA9UEG0ZcacQuihRANCAATkkvdOwsKPwsdytsALamuOaqXTb/x2
Q4d94Oy2Rh/ev2ep5IIPdiT9U7HcNGnXuREHRI9Gy/DkfcPy9CqUJF4s
-----END PRIVATE KEY-----
"""


@pytest.fixture
def server_context(tmp_path: Path) -> ssl.SSLContext:
    (tmp_path / "cert.pem").write_text(CERT)
    (tmp_path / "key.pem").write_text(KEY)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


@pytest.fixture
async def tls_fake(server_context: ssl.SSLContext) -> AsyncIterator[tuple[FakeKuaishou, str]]:
    fake = FakeKuaishou()
    runner = web.AppRunner(fake.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    try:
        yield fake, f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_verification_is_on_by_default(
    tls_fake: tuple[FakeKuaishou, str], make_client: MakeClient
) -> None:
    fake, url = tls_fake
    app = fake.add_authorizer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on the default path
        client = make_client(fake, base_url=url, retry=RetryPolicy.none(), timeout=5.0)
    async with client:
        connector = connector_of(client)
        assert connector._ssl is True
        for copy in (client, client.with_options(timeout=1.0)):
            with pytest.raises(TransportError) as info:
                await copy.app_info(Authorizer(app.app_id, app.access_token))
            assert "certificate" in str(info.value).lower()
            assert info.value.request_sent is False
    assert fake.requests == []  # nothing was sent over the unverified connection


async def test_a_trusted_certificate_is_accepted(
    tls_fake: tuple[FakeKuaishou, str], make_client: MakeClient
) -> None:
    """The control: the same server passes verification once its certificate is trusted."""
    fake, url = tls_fake
    app = fake.add_authorizer()
    trusting = ssl.create_default_context(cadata=CERT)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting))
    client = make_client(fake, base_url=url, retry=RetryPolicy.none(), timeout=5.0, session=session)
    async with session, client:
        info = await client.app_info(Authorizer(app.app_id, app.access_token))
    assert info.app_name
    assert len(fake.requests) == 1


async def test_turning_verification_off_warns(tls_fake: tuple[FakeKuaishou, str]) -> None:
    fake, url = tls_fake
    app = fake.add_authorizer()
    with pytest.warns(UserWarning, match="verification is off") as record:
        # Built here, not by make_client: the warning must point at this line.
        client = Client(
            fake.component_app_id,
            base_url=url,
            retry=RetryPolicy.none(),
            timeout=5.0,
            verify_ssl=False,
        )
    (warning,) = record.list
    assert warning.filename == __file__  # points at the caller, not into the SDK
    async with client:
        assert connector_of(client)._ssl is False
        info = await client.app_info(Authorizer(app.app_id, app.access_token))
    assert info.app_name


def test_each_unverified_client_warns() -> None:
    for _ in range(2):
        with pytest.warns(UserWarning, match="tokens can be intercepted"):
            Client("ks_component_test", verify_ssl=False)


async def test_verify_ssl_off_with_an_injected_session_is_refused() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidInputError, match="injected"):
            Client("ks_component", session=session, verify_ssl=False)
