"""The one place configuration values are checked: every option object and client uses these.

Each check raises :class:`~kuaishou_mp.InvalidInputError` (also a ``ValueError``, so code that
caught ``ValueError`` keeps working) with a message naming the setting, the rule and the value:
``RateLimit.burst must be an integer >= 1, got 0``. ``bool`` is never taken for a number, and
NaN never passes a range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from .errors import InvalidInputError

__all__ = ["field", "instance", "integer", "number", "one_of", "text"]


def _describe(low: float, low_ok: bool, high: float, high_ok: bool, finite: bool) -> str:
    kind = "a finite number" if finite else "a number"
    if high == math.inf:
        if low == -math.inf:
            return kind
        return f"{kind} {'>=' if low_ok else '>'} {low:g}"
    return f"{kind} in {'[' if low_ok else '('}{low:g}, {high:g}{']' if high_ok else ')'}"


def number(
    where: str,
    value: object,
    *,
    low: float = 0.0,
    low_ok: bool = False,
    high: float = math.inf,
    high_ok: bool = False,
    finite: bool = True,
    none_ok: bool = False,
) -> None:
    """Check that ``value`` is a number in the range (``> low`` by default, finite).

    Raises:
        InvalidInputError: It is not, with ``where`` (the setting's name) in the message.
    """
    if value is None and none_ok:
        return
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not math.isnan(value)
        and (math.isfinite(value) or not finite)
        and (low <= value if low_ok else low < value)
        and (value <= high if high_ok or high == math.inf else value < high)
    )
    if not ok:
        rule = _describe(low, low_ok, high, high_ok, finite)
        raise InvalidInputError(
            f"{where} must be {rule}{' or None' if none_ok else ''}, got {value!r}"
        )


def integer(where: str, value: object, *, low: int = 1) -> None:
    """Check that ``value`` is an ``int`` (not a ``bool``) of at least ``low``.

    Raises:
        InvalidInputError: It is not, with ``where`` in the message.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InvalidInputError(f"{where} must be an integer >= {low}, got {value!r}")


def text(where: str, value: object, *, blank_ok: bool = True, secret: bool = False) -> None:
    """Check that ``value`` is a non-empty ``str`` (not only spaces, with ``blank_ok=False``).

    A ``secret`` value is never shown: the message names its type instead (an empty string,
    which holds nothing, is shown as ``''``).

    Raises:
        InvalidInputError: It is not, with ``where`` in the message.
    """
    if not isinstance(value, str) or not (value if blank_ok else value.strip()):
        rule = "a non-empty string" if blank_ok else "a non-blank string"
        shown = type(value).__name__ if secret and value != "" else repr(value)
        raise InvalidInputError(f"{where} must be {rule}, got {shown}")


def instance(where: str, value: object, kind: type) -> None:
    """Check that ``value`` is an instance of ``kind``.

    Raises:
        InvalidInputError: It is not, with ``where``, the expected and the given type.
    """
    if not isinstance(value, kind):
        article = "an" if kind.__name__[:1] in "AEIOU" else "a"
        raise InvalidInputError(
            f"{where} must be {article} {kind.__name__}, got {type(value).__name__}"
        )


def one_of(where: str, value: object, choices: tuple[object, ...]) -> None:
    """Check that ``value`` is one of ``choices``.

    Raises:
        InvalidInputError: It is not, with ``where`` and the choices in the message.
    """
    if value not in choices:
        raise InvalidInputError(f"{where} must be one of {choices}, got {value!r}")


def field(
    owner: str, check: Callable[..., None], **rule: Any
) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """An attrs validator running ``check(f"{owner}.{name}", value, **rule)``."""

    def validate(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check(f"{owner}.{attribute.name}", value, **rule)

    return validate
