"""The sentinel that stands for "the SDK's default" where ``None`` already means "none"."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["DEFAULT", "Default"]


class Default(enum.Enum):
    """The type of :data:`DEFAULT`.

    ``Client(rate_limit=None)`` means no limiter and ``Client(retry=None)`` no retries, so
    "left out" needs a value of its own: ``DEFAULT``, the SDK's default for that option
    (``RateLimit()``, ``RetryPolicy()``), or, in
    :meth:`Client.with_options <kuaishou_mp.Client.with_options>`, the option of the client
    being copied. Pass it explicitly to mean the same as leaving the argument out.
    """

    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = Default.DEFAULT
"""Stands for "the default" of an option whose ``None`` means "none" (see :class:`Default`)."""
