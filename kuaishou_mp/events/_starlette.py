"""The push receiver as a Starlette (and so FastAPI) endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from .receiver import PushReceiver

__all__ = ["starlette_endpoint"]


def starlette_endpoint(receiver: PushReceiver) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette / FastAPI endpoint for ``receiver``.

    Starlette: ``Route("/kuaishou/push", starlette_endpoint(receiver), methods=["POST"])``;
    FastAPI: ``app.add_api_route("/kuaishou/push", starlette_endpoint(receiver),
    methods=["POST"])``. The body is read in chunks and refused with 413 as soon as it grows
    beyond :attr:`PushReceiver.max_body_bytes <kuaishou_mp.events.PushReceiver.max_body_bytes>`.
    Needs ``starlette`` (FastAPI brings it); nothing is imported until this is called.
    """
    from starlette.requests import Request
    from starlette.responses import Response

    async def push_endpoint(request: Request) -> Response:
        limit = receiver.max_body_bytes
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                answer = receiver.oversized()
                break
        else:
            answer = await receiver.handle(bytes(body), request.headers)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    # FastAPI inspects the signature: the annotation must be the real class, not a string.
    push_endpoint.__annotations__["request"] = Request
    return push_endpoint
