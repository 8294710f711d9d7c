"""What every Redis-backed piece shares: the limiter, the token storage and the push dedupe.

``redis`` is an optional extra (``kuaishou_mp[redis]``), so it is imported only when a Redis
client is made or its errors are first needed, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import re
import sys
import urllib.parse
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from ._validate import text
from .errors import InvalidInputError, TokenStorageError

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["bounded", "connect", "redis_errors", "storage_call"]

T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def bounded(aw: Awaitable[T], seconds: float) -> T:
        """Await one Redis round trip for at most ``seconds`` (``asyncio.TimeoutError`` past it)."""
        async with asyncio.timeout(seconds):
            return await aw

else:  # pragma: no cover - exercised on Python 3.10 only

    async def bounded(aw: Awaitable[T], seconds: float) -> T:
        """Await one Redis round trip for at most ``seconds`` (``asyncio.TimeoutError`` past it)."""
        return await asyncio.wait_for(aw, seconds)


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a failing Redis raises: redis-py's errors, socket errors, :func:`bounded`'s timeout."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, asyncio.TimeoutError)


async def storage_call(aw: Awaitable[T], seconds: float, what: str, app_id: str | None = None) -> T:
    """:func:`bounded`, with a failing Redis raised as :class:`~kuaishou_mp.TokenStorageError`.

    The message says ``what`` failed and names the error's class only: a Redis error's text may
    quote a command and its arguments. The Redis error is not chained to it.
    """
    try:
        return await bounded(aw, seconds)
    except redis_errors() as exc:
        failure = TokenStorageError(f"Redis {what} failed: {type(exc).__name__}", app_id=app_id)
    raise failure  # outside the except block: no chained Redis error


def connect(
    url: str, *, timeout: float, retry_once: bool = False, **redis_options: Any
) -> redis.asyncio.Redis:
    """A ``redis.asyncio.Redis`` for ``url`` with socket and connect timeouts of ``timeout``.

    No connection is made until first use. ``retry_once`` replaces redis-py's default retry of a
    dropped connection (which may take seconds) by one immediate retry. ``redis_options``
    override all of these.

    Raises:
        InvalidInputError: ``url`` is not a string, or redis-py refused it or an option.
    """
    import redis.asyncio

    text("url", url, secret=True)  # a URL may carry a password: its type is shown, never it

    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if retry_once:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        options["retry"] = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    options.update(redis_options)
    try:
        return redis.asyncio.Redis.from_url(url, **options)
    except ValueError as exc:
        raise InvalidInputError(f"url or redis_options: {_unquoted(str(exc), url)}") from None


def _unquoted(reason: str, url: str) -> str:
    """``reason`` with every quoted piece of the URL's host part replaced by ``'...'``.

    redis-py names an option without its value, but a port that is not a number is quoted
    (``Port could not be cast to integer value as 'pa'``), and it is a piece of the password
    when the password holds an unescaped ``/``, ``?`` or ``#``.
    """
    try:
        netloc = urllib.parse.urlsplit(url).netloc
    except ValueError:
        netloc = url

    def hide(quoted: re.Match[str]) -> str:
        piece = quoted[2] if quoted[1] is None else quoted[1]
        return "'...'" if piece and piece in netloc else quoted[0]

    return re.sub(r"'([^']*)'|\"([^\"]*)\"", hide, reason)
