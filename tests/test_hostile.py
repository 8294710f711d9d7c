"""Hostile responses: each gives one of our typed errors, fast, with memory bounded.

Through the whole client (aiohttp included), against the fake's raw/huge/endless faults and,
for what the fake cannot send (compressed bodies, broken HTTP), small servers of our own.
Memory is measured with tracemalloc around the call: the peak must stay well under ten times
the response cap, whatever the body's size.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from hardening_support import connector_of, settle

from kuaishou_mp import (
    DEFAULT_ERROR_CODES,
    AppInfo,
    Authorizer,
    Client,
    KuaishouError,
    RequestTimeoutError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from kuaishou_mp._endpoints import APP_INFO, decode
from kuaishou_mp.testing import FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import MakeClient

CAP = 256 * 1024
MEMORY_BOUND = 10 * CAP
# A body that is read (at most CAP bytes) goes to the JSON parser, and orjson (yyjson) sets
# aside about 13 times its input for the document it builds: linear in the cap, and transient.
PARSE_BOUND = 16 * CAP
# Seconds for any hostile answer that is not a timeout: well under the 5 s client timeout, with
# room for a loaded CI machine.
FAST = 2.0


@asynccontextmanager
async def hostile_client(base_url: str, timeout: float = 5.0) -> AsyncIterator[Client]:
    async with Client(
        "ks_component_test",
        base_url=base_url,
        timeout=timeout,
        retry=RetryPolicy.none(),
        max_response_bytes=CAP,
    ) as client:
        yield client
        # Whatever the answer did, the connection was given back or closed.
        assert await settle(connector_of(client)) == 0


async def measured(call: Awaitable[Any]) -> tuple[Any, float, int]:
    """Run ``call``; return (its result or the KuaishouError it raised, seconds, peak bytes)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.monotonic()
    outcome: Any
    try:
        outcome = await call
    except KuaishouError as exc:
        outcome = exc
    finally:
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, elapsed, peak


async def call_with_fault(fake: FakeKuaishou, fault: Fault, timeout: float = 5.0) -> Any:
    app = fake.add_authorizer()
    fake.inject(app.app_id, fault, fault)  # twice: aiohttp may resend a GET once on a drop
    async with hostile_client(fake.base_url, timeout) as client:
        outcome, elapsed, peak = await measured(
            client.app_info(Authorizer(app.app_id, app.access_token))
        )
    return outcome, elapsed, peak


# -- through the fake -------------------------------------------------------------------------


async def test_a_huge_body_past_the_cap_is_refused_unread(kuaishou_fake: FakeKuaishou) -> None:
    outcome, elapsed, peak = await call_with_fault(kuaishou_fake, Fault.huge(200 * 1024 * 1024))
    assert type(outcome) is TransportError
    assert "exceeds" in str(outcome)
    assert outcome.status == 200
    assert elapsed < FAST
    assert peak < MEMORY_BOUND


async def test_the_cap_is_exact(kuaishou_fake: FakeKuaishou) -> None:
    at_cap, _, peak = await call_with_fault(kuaishou_fake, Fault.huge(CAP))
    assert type(at_cap) is AppInfo
    assert peak < PARSE_BOUND
    past_cap, _, _ = await call_with_fault(kuaishou_fake, Fault.huge(CAP + 1))
    assert type(past_cap) is TransportError


async def test_an_endless_body_hits_the_cap(kuaishou_fake: FakeKuaishou) -> None:
    outcome, elapsed, peak = await call_with_fault(kuaishou_fake, Fault.endless())
    assert type(outcome) is TransportError
    assert "exceeds" in str(outcome)
    assert elapsed < 2 * FAST  # the fake trickles ~800 KB/s
    assert peak < MEMORY_BOUND


async def test_an_endless_body_hits_the_timeout_first(make_client: MakeClient) -> None:
    async with FakeKuaishou() as fake:
        app = fake.add_authorizer()
        fake.inject(app.app_id, Fault.endless())
        async with make_client(
            fake, timeout=0.2, retry=RetryPolicy.none(), max_response_bytes=64 * 1024 * 1024
        ) as client:
            outcome, elapsed, peak = await measured(
                client.app_info(Authorizer(app.app_id, app.access_token))
            )
            assert await settle(connector_of(client)) == 0
    assert type(outcome) is RequestTimeoutError
    assert elapsed < 0.2 + FAST
    assert peak < MEMORY_BOUND


NESTED = 20_000  # orjson refuses past 1024 levels; the stdlib parser recurses


@pytest.mark.parametrize(
    ("name", "fault", "expected"),
    [
        ("deeply nested array", Fault.raw(b"[" * NESTED + b"]" * NESTED), TransportError),
        ("unclosed nesting", Fault.raw(b"[" * NESTED), TransportError),
        (
            "deep value in a field",
            Fault.raw(b'{"result": 1, "app_name": ' + b"[" * 500 + b"]" * 500 + b"}"),
            ResponseValidationError,
        ),
        (
            # Parses (orjson allows 1024 levels), and str() of it would recurse too deep.
            "deep error message",
            Fault.raw(b'{"result": 100200500, "error_msg": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
            ServerError,
        ),
        ("JSON array", Fault.raw(b'[{"result": 1}]'), ResponseValidationError),
        ("JSON string", Fault.raw(b'"result"'), ResponseValidationError),
        ("result as string", Fault.raw(b'{"result": "1"}'), ResponseValidationError),
        ("200 with an HTML page", Fault.raw(b"<html><body>OK</body></html>"), TransportError),
        (
            "HTML under a JSON content type",
            Fault.raw(b"<!doctype html><title>maintenance</title>"),
            TransportError,
        ),
        (
            "binary under a wrong content type",
            Fault.raw(bytes(range(256)), content_type="application/octet-stream"),
            TransportError,
        ),
        ("invalid UTF-8", Fault.raw(b'{"result": 1, "app_name": "\xff\xfe"}'), TransportError),
        ("invalid UTF-8 error", Fault.raw(b'{"result": 5, "error_msg": "\xc3("}'), TransportError),
        ("truncated", Fault.malformed(), TransportError),
        ("empty 200", Fault.raw(b""), TransportError),
        ("NaN", Fault.raw(b'{"result": NaN}'), TransportError),
        ("huge number", Fault.raw(b'{"result": 1, "status": 1e400}'), TransportError),
        ("redirect", Fault.raw(b"", status=302), TransportError),
        ("HTTP 500 with JSON success", Fault.raw(b'{"result": 1}', status=500), TransportError),
    ],
)
async def test_hostile_bodies_give_typed_errors(
    kuaishou_fake: FakeKuaishou, name: str, fault: Fault, expected: type[KuaishouError]
) -> None:
    outcome, elapsed, peak = await call_with_fault(kuaishou_fake, fault)
    assert type(outcome) is expected, (name, outcome)
    assert elapsed < FAST, name
    assert peak < MEMORY_BOUND, name
    assert len(str(outcome)) < 1000, name  # messages and excerpts stay short


async def test_a_huge_error_message_is_cut(kuaishou_fake: FakeKuaishou) -> None:
    message = b"x" * (CAP - 64)
    fault = Fault.raw(b'{"result": 400003, "error_msg": "' + message + b'"}')
    outcome, elapsed, peak = await call_with_fault(kuaishou_fake, fault)
    assert type(outcome) is ServerError
    assert len(str(outcome)) < 1000
    assert elapsed < FAST
    assert peak < PARSE_BOUND


async def test_a_wrong_content_type_alone_is_not_fatal(kuaishou_fake: FakeKuaishou) -> None:
    """The body decides, not the header: a platform answer labelled text/plain still parses
    (gateways mislabel), and an HTML page labelled JSON is still refused (above)."""
    outcome, _, _ = await call_with_fault(
        kuaishou_fake, Fault.raw(b'{"result": 1, "app_name": "x"}', content_type="text/plain")
    )
    assert type(outcome) is AppInfo
    assert outcome.app_name == "x"


async def test_the_deep_error_message_is_typed_when_decoded_directly() -> None:
    body = b'{"result": 100200500, "error_msg": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    with pytest.raises(ServerError, match="a JSON list"):
        decode(APP_INFO, 200, body, app_id="a", error_codes=DEFAULT_ERROR_CODES)


# -- servers of our own -----------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def aiohttp_server(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@functools.cache
def bomb(encoding: str) -> bytes:
    """16 MiB of JSON (64 times the cap) that travels as a few KiB."""
    body = b'{"result": 1, "app_name": "' + b"a" * (16 * 1024 * 1024) + b'"}'
    return gzip.compress(body, 9) if encoding == "gzip" else zlib.compress(body, 9)


def compressed_response(data: bytes, encoding: str, *, chunked: bool = False) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
        if not chunked:
            return web.Response(body=data, headers=headers)
        response = web.StreamResponse(headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for i in range(0, len(data), 4096):
                await response.write(data[i : i + 4096])
        except ConnectionError:
            pass
        return response

    return handler


@pytest.mark.parametrize(
    ("encoding", "chunked"), [("gzip", False), ("deflate", False), ("gzip", True)]
)
async def test_a_compression_bomb_is_capped_after_decompression(
    encoding: str, chunked: bool
) -> None:
    """16 MiB of JSON that travels as ~16 KiB: under the cap on the wire, and aiohttp inflates
    it. Past the cap once inflated, it is a TransportError, read no further."""
    async with (
        aiohttp_server(compressed_response(bomb(encoding), encoding, chunked=chunked)) as url,
        hostile_client(url) as client,
    ):
        outcome, elapsed, peak = await measured(client.app_info(Authorizer("a", "t0k3n_value")))
    assert type(outcome) is TransportError, outcome
    assert "exceeds" in str(outcome)
    assert elapsed < FAST
    assert peak < MEMORY_BOUND


async def test_a_small_compressed_answer_still_parses() -> None:
    body = b'{"result": 1, "app_name": "' + "压缩".encode() * 100 + b'"}'
    async with (
        aiohttp_server(compressed_response(gzip.compress(body), "gzip")) as url,
        hostile_client(url) as client,
    ):
        info = await client.app_info(Authorizer("a", "t0k3n_value"))
    assert info.app_name == "压缩" * 100


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(answer: bytes, *, trickle: float = 0.0) -> AsyncIterator[str]:
    """A TCP server that reads the request head and writes ``answer`` (byte by byte with a
    pause when ``trickle``), then closes."""
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            if trickle:
                for byte in answer:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(trickle)
            else:
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            handlers.discard(task)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await server.wait_closed()


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("not HTTP at all", b"SSH-2.0-OpenSSH_9.6\r\n"),
        ("garbage status line", b"HTTP/1.1 two hundred OK\r\n\r\n"),
        ("body shorter than its length", HEAD + b"Content-Length: 100\r\n\r\n" + b'{"result": 1}'),
        ("negative length", HEAD + b"Content-Length: -5\r\n\r\n{}"),
        ("two lengths", HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
        ("huge header", HEAD + b"X-Junk: " + b"j" * 200_000 + b"\r\n\r\n"),
        ("endless headers", HEAD + b"X-A: b\r\n" * 100_000),
        ("broken chunking", HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n"),
        (
            "chunk size past the cap",
            HEAD + b"Transfer-Encoding: chunked\r\n\r\n7fffffff\r\n" + b"a" * 4096,
        ),
        ("nothing", b""),
    ],
)
async def test_broken_http_gives_a_transport_error(name: str, answer: bytes) -> None:
    async with raw_server(answer) as url, hostile_client(url, timeout=2.0) as client:
        outcome, elapsed, peak = await measured(client.app_info(Authorizer("a", "t0k3n_value")))
    assert isinstance(outcome, TransportError), (name, outcome)
    assert elapsed < FAST, name
    assert peak < MEMORY_BOUND, name


async def test_a_trickled_answer_is_cut_by_the_timeout() -> None:
    answer = HEAD + b"Content-Length: 20\r\n\r\n" + b'{"result": 1}       '
    async with (
        raw_server(answer, trickle=0.05) as url,
        hostile_client(url, timeout=0.3) as client,
    ):
        outcome, elapsed, _ = await measured(client.app_info(Authorizer("a", "t0k3n_value")))
    assert type(outcome) is RequestTimeoutError
    assert elapsed < 0.3 + FAST
