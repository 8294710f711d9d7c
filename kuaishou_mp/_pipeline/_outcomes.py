"""What an attempt's outcome tells the rest of the client: the capacity state, and whether a
delete may already have taken effect."""

from __future__ import annotations

import time

from .._endpoints import Idempotency
from ..errors import APIError, KuaishouError, RateLimitedError, ServerError, TransportError
from ..models import DomainAction
from ._capacity import Capacity
from ._request import Request

__all__ = ["maybe_deleted_already", "tell_capacity"]

_DELETE = DomainAction.DELETE.value


def tell_capacity(
    capacity: Capacity, app_id: str | None, exc: BaseException, status: int | None
) -> None:
    """Tell ``capacity`` what a failed attempt for ``app_id`` says of the platform."""
    # Transient failures count towards an outage; any answer of the platform proves it up.
    if isinstance(exc, (TransportError, ServerError)):
        capacity.failed(app_id, time.monotonic())
    elif isinstance(exc, APIError) or (status is not None and isinstance(exc, KuaishouError)):
        capacity.answered(time.monotonic(), throttled=isinstance(exc, RateLimitedError))


def maybe_deleted_already(req: Request) -> bool:
    """Whether ``req`` is a delete whose earlier, ambiguous attempt may have taken effect."""
    body = req.body
    return (
        req.endpoint.idempotency is Idempotency.CONFIRM_DELETE
        and req.stats.ambiguous
        and body is not None
        and body.get("action") == _DELETE
    )
