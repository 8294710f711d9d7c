"""Timeouts for one call."""

from __future__ import annotations

import attrs

from ._validate import field, number

__all__ = ["Timeout"]


_positive_or_none = field("Timeout", number, finite=False, none_ok=True)


@attrs.frozen
class Timeout:
    """How long one attempt may take.

    Args:
        total: Seconds for a whole attempt: connect, send, wait and read the body. ``None`` for
            no limit (the retry policy's deadline still bounds the call).
        connect: Seconds to obtain a connection (from the pool or a new one). ``None`` for no
            separate limit.

    A bare number given where a ``Timeout`` is expected means ``Timeout(total=number)``.
    """

    total: float | None = attrs.field(default=10.0, validator=_positive_or_none)
    connect: float | None = attrs.field(default=None, validator=_positive_or_none)

    @classmethod
    def of(cls, value: Timeout | float | None) -> Timeout:
        """Coerce a number (total seconds), ``None`` (no limit) or a ``Timeout``.

        Args:
            value: What was given as a timeout.

        Returns:
            ``value`` itself if it is a ``Timeout``, else ``Timeout(total=value)``.

        Raises:
            InvalidInputError: A number that is not positive (also a ``ValueError``).
        """
        if isinstance(value, Timeout):
            return value
        return cls(total=value)
