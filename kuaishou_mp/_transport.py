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
from aiohttp import hdrs
from yarl import URL

from ._attempt_timer import AttemptTimer
from ._scrub import scrub
from .errors import ClientClosedError, KuaishouError, RequestTimeoutError, TransportError

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "send"]

DEFAULT_MAX_RESPONSE_BYTES: Final = 1 << 20
_JSON_HEADERS: Final = {"Content-Type": "application/json"}
_CONTENT_ENCODING: Final = hdrs.CONTENT_ENCODING


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: URL,
    body: bytes | None,
    *,
    timeout: aiohttp.ClientTimeout,
    max_bytes: int,
    secrets: tuple[str, ...],
    endpoint: str,
    app_id: str | None,
    timer: AttemptTimer | None = None,
) -> tuple[int, bytes]:
    """Send one request and return ``(status, body)``; raise a scrubbed TransportError.

    Secret-named query parameters and each of ``secrets`` are masked in every message.

    With a ``timer``, it bounds the whole attempt (``timeout`` then carries no total of its
    own); without one, ``timeout.total`` does.

    A session closed while the call was in flight (the client closed meanwhile) raises
    :class:`~kuaishou_mp.ClientClosedError` instead of aiohttp's bare RuntimeError.
    """
    failure: KuaishouError
    watch = None if timer is None else timer.watch()
    try:
        async with session.request(
            method,
            url,
            data=body,
            headers=_JSON_HEADERS if body is not None else None,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            length = response.content_length
            # Content-Length counts the bytes on the wire and aiohttp decompresses: a small
            # compressed body can inflate far past the cap (a "zip bomb"), so it is read bounded.
            if (
                length is not None
                and length <= max_bytes
                and _CONTENT_ENCODING not in response.headers
            ):
                return response.status, await response.read()
            if length is not None and length > max_bytes:
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
    except asyncio.CancelledError:
        if watch is None or not watch.expired():
            raise
        assert timer is not None
        failure = RequestTimeoutError(
            f"timed out after {timer.timeout:g}s", endpoint=endpoint, app_id=app_id
        )
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
        failure = RequestTimeoutError(
            f"timed out ({_describe(exc, secrets)})",
            request_sent=not isinstance(exc, aiohttp.ConnectionTimeoutError),
            endpoint=endpoint,
            app_id=app_id,
        )
    except aiohttp.ClientConnectorError as exc:
        failure = TransportError(
            f"cannot connect ({_describe(exc, secrets)})",
            request_sent=False,
            endpoint=endpoint,
            app_id=app_id,
        )
    except (aiohttp.ClientError, OSError) as exc:
        failure = TransportError(
            f"request failed ({_describe(exc, secrets)})",
            endpoint=endpoint,
            app_id=app_id,
        )
    except RuntimeError:
        # aiohttp refuses a closed session with a bare RuntimeError: the client (or the owner
        # of an injected session) closed it while this call was in flight, e.g. retrying.
        if not session.closed:
            raise
        failure = ClientClosedError(
            "the client's session was closed during the call",
            endpoint=endpoint,
            app_id=app_id,
        )
    finally:
        if watch is not None:
            watch.finish()
    raise failure


def _describe(exc: BaseException, secrets: tuple[str, ...]) -> str:
    text = str(exc)
    return scrub(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, secrets)
