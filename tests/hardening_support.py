"""Helpers shared by the hardening tests (chaos, cancellation, hostile responses, canary)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import aiohttp

from kuaishou_mp import Client
from kuaishou_mp.testing import FakeKuaishou

T = TypeVar("T")

CANARY = "CANARY+tok/5f3a9c1e7b2d=="
"""A planted token with the characters that change when a token is percent-encoded or
JSON-escaped, so an echo of its encoded form is caught too."""

CANARY_FORMS = (CANARY, "CANARY%2Btok%2F5f3a9c1e7b2d%3D%3D", "CANARY+tok\\/5f3a9c1e7b2d==")
"""The canary as it is, percent-encoded (as it travels in the query string) and JSON-escaped."""

CANARY_FRAGMENTS = tuple(
    sorted({form[i : i + 8] for form in CANARY_FORMS for i in range(len(form) - 7)})
)
"""Every 8-character piece of every form: a token cut in two must not leak either."""


def leaks(text: str) -> list[str]:
    """The canary forms and fragments found in ``text``."""
    return [f for f in (*CANARY_FORMS, *CANARY_FRAGMENTS) if f in text]


def exception_text(exc: BaseException) -> str:
    """Everything an exception can show: message, repr, attributes, chain, traceback."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), repr(seen.args)]
        parts.append(repr(vars(seen)) if hasattr(seen, "__dict__") else "")
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


async def poll_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Let the loop run until ``condition()`` holds or ``timeout`` passes; return it."""
    deadline = time.monotonic() + timeout
    for _ in range(1_000_000):
        if condition() or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.01)
    return condition()


def connector_of(client: Client) -> aiohttp.TCPConnector:
    connector = client.session.connector
    assert isinstance(connector, aiohttp.TCPConnector)
    return connector


def in_use(connector: aiohttp.BaseConnector) -> int:
    """Connections handed out by the pool and not given back (aiohttp's own bookkeeping)."""
    acquired: set[Any] = connector._acquired
    return len(acquired)


def open_sockets(connector: aiohttp.BaseConnector) -> int:
    """Connections in use that hold a real transport. (aiohttp 3.14 leaves the placeholder of
    a connection opened while the connector closed in ``_acquired``; it holds no socket.)"""
    acquired: set[Any] = connector._acquired
    return sum(1 for proto in acquired if getattr(proto, "transport", None) is not None)


async def server_connections(fake: FakeKuaishou, timeout: float = 2.0) -> int:
    """Connections the fake still has open (seen from the server's side), after letting
    closes propagate."""
    runner = fake._runner
    assert runner is not None
    server = runner.server
    assert server is not None
    await poll_until(lambda: not server.connections, timeout)
    return len(server.connections)


def pooled(connector: aiohttp.BaseConnector) -> int:
    """Idle keep-alive connections waiting in the pool."""
    conns: dict[Any, Any] = connector._conns
    return sum(len(v) for v in conns.values())


async def settle(connector: aiohttp.BaseConnector, timeout: float = 2.0) -> int:
    """Let the loop finish releasing connections; return how many are still in use."""
    await poll_until(lambda: not in_use(connector), timeout)
    return in_use(connector)


def other_tasks() -> set[asyncio.Task[Any]]:
    """Tasks of the running loop besides the current one."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current}


async def no_other_tasks(timeout: float = 2.0) -> set[asyncio.Task[Any]]:
    """Wait (bounded) until the current task is the loop's only one; return any others left."""
    await poll_until(lambda: not other_tasks(), timeout)
    return other_tasks()


class FakeThread:
    """A FakeKuaishou serving from its own event loop in a daemon thread, for code that runs
    its own loop (the command line, the soak benchmark)."""

    def __init__(self, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="fake-kuaishou", daemon=True)
        self.thread.start()
        self.fake = FakeKuaishou(**options)
        self.base_url = self.run(self.fake.start("127.0.0.1", 0))

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the fake's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the fake's loop thread (the fake is not thread-safe)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def close(self) -> None:
        self.run(self.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


class LoopErrors:
    """Records what reaches the event loop's exception handler ("Task was destroyed but it is
    pending", "Unclosed client session", callbacks that raised, ...)."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.contexts.append(context)

    @property
    def messages(self) -> list[str]:
        return [f"{c.get('message')}: {c.get('exception')!r}" for c in self.contexts]


@contextmanager
def recording_loop_errors() -> Iterator[LoopErrors]:
    """Install a recording exception handler on the running loop (collect garbage on exit,
    so a task or session dropped without being finished is reported before we look)."""
    loop = asyncio.get_running_loop()
    errors = LoopErrors()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(errors)
    try:
        yield errors
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
