"""The base of the models' enums: an ``IntEnum`` that keeps values the SDK does not know."""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["OpenIntEnum"]


class OpenIntEnum(enum.IntEnum):
    """An IntEnum that keeps values it does not know instead of raising."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # Not cached in the value map: a hostile response must not grow it without bound.
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return member
        return None

    @property
    def is_known(self) -> bool:
        """Whether this value is one the SDK knows by name (``False`` for ``UNKNOWN_<n>``)."""
        return self._name_ in type(self).__members__
