"""The only code that touches aiohttp: send one request, read a bounded body, translate errors.

aiohttp's exceptions carry the request URL, and ours carries the access token in its query
string. Nothing from aiohttp crosses this boundary: every failure becomes a
:class:`~kuaishou_mp.TransportError` with a scrubbed message, raised outside the ``except``
block so neither ``__cause__`` nor ``__context__`` holds the original.
"""

from __future__ import annotations

import asyncio
from typing import Final

import aiohttp
from yarl import URL

from ._scrub import scrub
from .errors import RequestTimeoutError, TransportError

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "send"]

DEFAULT_MAX_RESPONSE_BYTES: Final = 1 << 20
_JSON_HEADERS: Final = {"Content-Type": "application/json"}


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes | None,
    *,
    timeout: aiohttp.ClientTimeout,
    max_bytes: int,
    secret: str,
    endpoint: str,
    app_id: str,
) -> tuple[int, bytes]:
    """Send one request and return ``(status, body)``; raise a scrubbed TransportError."""
    failure: TransportError
    try:
        async with session.request(
            method,
            URL(url, encoded=True),
            data=body,
            headers=_JSON_HEADERS if body is not None else None,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            length = response.content_length
            if length is not None and length <= max_bytes:
                return response.status, await response.read()
            if length is not None:
                response.close()
                failure = TransportError(
                    f"response body of {length} bytes exceeds the {max_bytes}-byte cap",
                    status=response.status,
                    endpoint=endpoint,
                    app_id=app_id,
                )
            else:
                data = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    data += chunk
                    if len(data) > max_bytes:
                        response.close()
                        break
                else:
                    return response.status, bytes(data)
                failure = TransportError(
                    f"response body exceeds the {max_bytes}-byte cap",
                    status=response.status,
                    endpoint=endpoint,
                    app_id=app_id,
                )
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
        failure = RequestTimeoutError(
            f"timed out ({_describe(exc, secret)})",
            request_sent=not isinstance(exc, aiohttp.ConnectionTimeoutError),
            endpoint=endpoint,
            app_id=app_id,
        )
    except aiohttp.ClientConnectorError as exc:
        failure = TransportError(
            f"cannot connect ({_describe(exc, secret)})",
            request_sent=False,
            endpoint=endpoint,
            app_id=app_id,
        )
    except (aiohttp.ClientError, OSError) as exc:
        failure = TransportError(
            f"request failed ({_describe(exc, secret)})",
            endpoint=endpoint,
            app_id=app_id,
        )
    raise failure


def _describe(exc: BaseException, secret: str) -> str:
    text = str(exc)
    return scrub(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, (secret,))
