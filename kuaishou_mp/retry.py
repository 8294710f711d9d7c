"""Retry policy: which failures are retried, how long to back off, and the per-call deadline.

The policy is configuration; the client's retry layer turns it into tenacity's ``retry``,
``wait`` and ``stop`` strategies, with a fresh ``AsyncRetrying`` per call (one shared instance
would share its statistics and state across concurrent tasks).

Which calls are safe to repeat:

* ``app_info``, domain ``get`` and ``set`` are idempotent: retried as they are.
* ``add`` is retried as it is: adding a domain that is already configured leaves the list as it
  was, so a second ``add`` after an ambiguous failure cannot change the outcome.
* ``delete`` is not idempotent on the wire: when a retry follows a failure after which the first
  attempt may have reached the platform (a timeout, a dropped connection, a 5xx, a server error)
  and the retry answers 403106 (domain not found), the client confirms with a ``get``. If none
  of the domains to delete is configured any more, the delete succeeded and the ``get`` result is
  returned; otherwise the :class:`~kuaishou_mp.DomainNotFoundError` is raised.
"""

from __future__ import annotations

import attrs

from ._validate import field, integer, number
from .errors import (
    AuthError,
    BadRequestError,
    DomainNotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from .retry_budget import RetryBudget

__all__ = ["NEVER_RETRIED", "RetryPolicy"]

NEVER_RETRIED: tuple[type[BaseException], ...] = (
    DomainNotFoundError,
    BadRequestError,
    AuthError,
)
"""Business errors: repeating the call cannot change the answer, so no policy retries them."""


_positive_int = field("RetryPolicy", integer)
# Not bounded above: an infinite backoff cap or deadline means none.
_positive = field("RetryPolicy", number, finite=False)
_positive_or_none = field("RetryPolicy", number, finite=False, none_ok=True)


@attrs.frozen
class RetryPolicy:
    """How a call is retried.

    Args:
        max_attempts: Attempts in all, the first included (``1`` turns retries off).
        backoff_base: Seconds; the wait after attempt ``n`` is uniform in
            ``[0, min(backoff_max, backoff_base * 2**(n - 1))]`` ("full jitter").
        backoff_max: Cap on one wait, seconds.
        deadline: Seconds for the whole call, retries and waits included, or ``None``. No wait
            starts that would end past it, and each attempt's timeout is cut to what is left.
        retry_on: Exception classes that are retried. Business errors
            (:data:`NEVER_RETRIED`) are never retried, whatever this says.
        budget: The client-wide :class:`~kuaishou_mp.RetryBudget` retries draw on (one meter
            per client, shared by its ``with_options`` copies); ``None`` disables it. A
            throttled call sent back through the limiter spends no budget.

    Raises:
        InvalidInputError: A setting is out of range (also a ``ValueError``).
    """

    max_attempts: int = attrs.field(default=4, validator=_positive_int)
    backoff_base: float = attrs.field(default=0.2, validator=_positive)
    backoff_max: float = attrs.field(default=5.0, validator=_positive)
    deadline: float | None = attrs.field(default=60.0, validator=_positive_or_none)
    retry_on: tuple[type[BaseException], ...] = (TransportError, ServerError, RateLimitedError)
    budget: RetryBudget | None = attrs.field(factory=RetryBudget)

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(max_attempts=1)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether this policy retries ``exc`` (``CancelledError`` and business errors: never).

        Args:
            exc: The exception an attempt raised.
        """
        return isinstance(exc, self.retry_on) and not isinstance(exc, NEVER_RETRIED)
