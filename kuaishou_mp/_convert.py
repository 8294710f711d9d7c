"""The one cattrs converter: wire JSON <-> models, built once at import and reused.

cattrs' defaults are too forgiving for a wire format (``str(None) == "None"``, ``int("7")``) and
too strict for a platform that adds fields and sends ``null``. The hooks here are strict about
types and lenient about absence: ``null`` means "not sent", so the field's default applies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn
from cattrs.v import format_exception

from .errors import ResponseValidationError
from .models import _OpenIntEnum

__all__ = ["converter", "structure", "unstructure"]

T = TypeVar("T")

converter = cattrs.Converter(detailed_validation=True)


def _structure_str(value: Any, _: type) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {_json_type(value)}")


def _structure_int(value: Any, _: type) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {_json_type(value)}")


def _tuple_hook_factory(target: Any) -> Callable[[Any, type], tuple[Any, ...]]:
    (item_type, _) = get_args(target)
    item_hook = converter.get_structure_hook(item_type)

    def structure_tuple(value: Any, _: type) -> tuple[Any, ...]:
        # cattrs would iterate a string character by character; a wire list must be a list.
        if type(value) is not list:
            raise TypeError(f"expected an array, got {_json_type(value)}")
        items = []
        errors: list[Exception] = []
        for i, item in enumerate(value):
            try:
                items.append(item_hook(item, item_type))
            except Exception as exc:
                # Not add_note(): that is Python 3.11+, and we support 3.10.
                exc.__notes__ = [  # type: ignore[attr-defined]
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"Structuring {target} @ index {i}", i, item_type),
                ]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {target!r}", errors, target)
        return tuple(items)

    return structure_tuple


def _optional_hook_factory(target: Any) -> Callable[[Any, type], Any]:
    # Optional fields only occur in models, whose nulls are dropped before field hooks run
    # (see structure_attrs), so an optional's hook is its inner type's. Resolving it here saves
    # cattrs' per-call dispatch on the hot path (app info has seven optional fields).
    (inner_type,) = (t for t in get_args(target) if t is not type(None))
    inner = converter.get_structure_hook(inner_type)

    def structure_optional(value: Any, _: type) -> Any:
        return inner(value, inner_type)

    return structure_optional


def _is_optional(target: Any) -> bool:
    args = get_args(target)
    return len(args) == 2 and type(None) in args and get_origin(target) in (Union, UnionType)


def _is_homogeneous_tuple(target: Any) -> bool:
    args = get_args(target)
    return get_origin(target) is tuple and len(args) == 2 and args[1] is Ellipsis


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _structure_enum(value: Any, cls: type[_OpenIntEnum]) -> _OpenIntEnum:
    # A dict lookup for known values; Enum.__call__ only for the ones the platform adds later.
    member = cls._value2member_map_.get(value) if type(value) is int else None
    return member if member is not None else cls(_structure_int(value, int))  # type: ignore[return-value]


def _attrs_hook_factory(cls: type[Any]) -> Callable[[Any, type], Any]:
    inner = make_dict_structure_fn(cls, converter)

    def structure_attrs(value: Any, target: type) -> Any:
        if type(value) is not dict:
            raise TypeError(f"expected an object, got {_json_type(value)}")
        if None in value.values():
            # Dropping nulls lets attrs defaults stand in for them: null nested objects become
            # None, null lists empty, null strings empty -- never the string "None".
            value = {k: v for k, v in value.items() if v is not None}
        return inner(value, target)

    return structure_attrs


converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_hook_factory)
converter.register_structure_hook_factory(_is_optional, _optional_hook_factory)
# A class hook, more specific than int's, so the open enums do not fall to the int hook.
converter.register_structure_hook(_OpenIntEnum, _structure_enum)
converter.register_structure_hook_factory(attrs.has, _attrs_hook_factory)


def _describe(exc: BaseException, target: type | None) -> str:
    # Our hooks raise TypeErrors that already say what arrived; cattrs' default text would not.
    if isinstance(exc, TypeError) and str(exc).startswith("expected"):
        return str(exc)
    return format_exception(exc, target)


def structure(
    document: Mapping[str, Any], cls: type[T], *, endpoint: str | None, app_id: str | None
) -> T:
    """Build ``cls`` from a decoded JSON object, or raise :class:`ResponseValidationError`.

    The error names every field path that did not fit (``$.app_category[0].status: ...``).
    """
    try:
        return converter.structure(document, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        errors = (
            cattrs.transform_error(exc, path="$", format_exception=_describe)
            if isinstance(exc, cattrs.BaseValidationError)
            else [f"{exc} @ $"]
        )
        problem = ResponseValidationError(
            f"response does not fit {cls.__name__}",
            errors=errors,
            endpoint=endpoint,
            app_id=app_id,
        )
    # Raised outside the except block: the cattrs chain holds response values we do not need.
    raise problem


def unstructure(model: object) -> Any:
    """Turn a model into plain JSON-ready data with the platform's field names."""
    return converter.unstructure(model)
