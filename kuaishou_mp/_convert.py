"""The one cattrs converter: wire JSON <-> models, built once at import and reused.

cattrs' defaults are too forgiving for a wire format (``str(None) == "None"``, ``int("7")``) and
too strict for a platform that adds fields and sends ``null``. The hooks here are strict about
types and lenient about absence: ``null`` means "not sent", so the field's default applies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn
from cattrs.v import format_exception

from ._fast_structure import FastStructure, NotFast, compile_fast
from ._open_enum import OpenIntEnum
from .errors import ResponseValidationError
from .models import AppInfo, ServerDomains, WebviewDomains

__all__ = ["converter", "json_type", "structure", "unstructure"]

T = TypeVar("T")

converter = cattrs.Converter(detailed_validation=True)


def _structure_str(value: Any, _: type) -> str:
    if type(value) is str:
        return value
    if value is None:  # a null string field means "not sent", never the string "None"
        return ""
    raise TypeError(f"expected a string, got {json_type(value)}")


def _structure_int(value: Any, _: type) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {json_type(value)}")


def _structure_enum(value: Any, cls: type[OpenIntEnum]) -> OpenIntEnum:
    # A dict lookup for known values; Enum.__call__ only for the ones the platform adds later.
    member = cls._value2member_map_.get(value) if type(value) is int else None
    return member if member is not None else cls(_structure_int(value, int))  # type: ignore[return-value]


def _structure_str_tuple(value: Any, _: type) -> tuple[str, ...]:
    # The domain lists: the hottest tuple, checked in one pass without per-item hook calls.
    if type(value) is list:
        for i, item in enumerate(value):
            if type(item) is not str:
                raise IterableValidationError(
                    "While structuring a list of strings",
                    [_at_index(TypeError(f"expected a string, got {json_type(item)}"), i, str)],
                    tuple[str, ...],
                )
        return tuple(value)
    if value is None:
        return ()
    raise TypeError(f"expected an array, got {json_type(value)}")


def _tuple_hook_factory(target: Any) -> Callable[[Any, type], tuple[Any, ...]]:
    (item_type, _) = get_args(target)
    item_hook = converter.get_structure_hook(item_type)

    def structure_tuple(value: Any, _: type) -> tuple[Any, ...]:
        # cattrs would iterate a string character by character; a wire list must be a list.
        if type(value) is not list:
            if value is None:
                return ()
            raise TypeError(f"expected an array, got {json_type(value)}")
        items = []
        errors: list[Exception] = []
        for i, item in enumerate(value):
            try:
                items.append(item_hook(item, item_type))
            except Exception as exc:
                errors.append(_at_index(exc, i, item_type))
        if errors:
            raise IterableValidationError(f"While structuring {target!r}", errors, target)
        return tuple(items)

    return structure_tuple


def _at_index(exc: Exception, index: int, item_type: Any) -> Exception:
    # Not add_note(): that is Python 3.11+, and we support 3.10.
    exc.__notes__ = [  # type: ignore[attr-defined]
        *getattr(exc, "__notes__", []),
        IterableValidationNote(f"Structuring item @ index {index}", index, item_type),
    ]
    return exc


def _is_homogeneous_tuple(target: Any) -> bool:
    args = get_args(target)
    return get_origin(target) is tuple and len(args) == 2 and args[1] is Ellipsis


def _attrs_hook(cls: type[Any]) -> Callable[[Any, type], Any]:
    inner = make_dict_structure_fn(cls, converter)

    def structure_attrs(value: Any, _: type) -> Any:
        # cattrs' generated code would read a list or a string as an object with no fields.
        if type(value) is dict:
            return inner(value, cls)
        raise TypeError(f"expected an object, got {json_type(value)}")

    return structure_attrs


def json_type(value: object) -> str:
    """How a decoded JSON value is named in a message: ``an object``, ``null``, ``a number``..."""
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


# Nulls are handled by the hooks, field by field: a null string is empty, a null list empty, a
# null nested object None. Items inside lists get no such leniency.
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
# A class hook, more specific than int's, so the open enums do not fall to the int hook.
converter.register_structure_hook(OpenIntEnum, _structure_enum)
converter.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_hook_factory)
converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _structure_str_tuple)
converter.register_structure_hook_factory(attrs.has, _attrs_hook)
_hooks: dict[type, Callable[[Any, type], Any]] = {}
# The endpoints' models (and the models nested in them) keep the converter's default rules, so
# their fast paths return exactly what it would; see _fast_structure.
_fast: dict[type, FastStructure | None] = {
    cls: compile_fast(cls) for cls in (AppInfo, ServerDomains, WebviewDomains)
}


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
    fast = _fast.get(cls)
    if fast is not None and type(document) is dict:
        try:
            result: T = fast(document)
            return result
        # A model's own validator or converter may refuse a value too: then, like for any
        # unusual document, the converter decides and words the error.
        except (NotFast, TypeError, ValueError):
            pass
    hook = _hooks.get(cls)
    if hook is None:
        hook = _hooks[cls] = converter.get_structure_hook(cls)
    try:
        structured: T = hook(document, cls)
        return structured
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
