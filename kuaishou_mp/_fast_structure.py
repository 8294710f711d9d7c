"""A fast path for the usual, well-formed answer; the cattrs converter decides everything else.

Structuring a basic-info answer with the converter's generated code takes most of the SDK's own
time per call: seven nested objects, each built through a keyword ``__init__`` inside
try/except blocks that collect field paths for error messages. Almost every answer is
well-formed, so for each model we generate one straight-line function that accepts only the
exact shapes the wire normally carries (a ``str`` where a string is, an ``int`` where an integer
is, a known enum value, an object, an array) and builds the instances directly.

Anything else (a float where an integer is, an enum value added later, a wrong type) raises
:class:`Fallback`, and the caller runs the converter, which accepts it under its lenient rules
or names the field paths that do not fit. The fast path never decides an outcome of its own: it
returns only what the converter would have returned (a property test holds it to that).

Only what can be proved equal is compiled. A field type outside the small set below, a field
whose wire name differs from its attribute name, or a default different from what ``null`` gives
leaves the class without a fast path (:func:`compile_fast` returns ``None``).
"""

from __future__ import annotations

import enum
import linecache
from collections.abc import Callable
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import attrs

__all__ = ["Fallback", "compile_fast"]

FastStructure = Callable[[dict[str, Any]], Any]


class Fallback(Exception):
    """The document is not in the usual shape: let the converter decide."""


def _fallback() -> Any:
    raise Fallback


def _str_tuple(value: list[Any]) -> tuple[str, ...]:
    for item in value:
        if type(item) is not str:
            raise Fallback
    return tuple(value)


def _object_tuple(build: FastStructure, value: list[Any]) -> tuple[Any, ...]:
    return tuple([build(item) if type(item) is dict else _fallback() for item in value])


def compile_fast(cls: type[Any]) -> FastStructure | None:
    """Generate the fast structuring function of attrs class ``cls``, or ``None`` if unsupported.

    The function takes a ``dict`` and returns a ``cls`` or raises :class:`Fallback`.
    """
    return _Compiler().compile(cls)


class _Compiler:
    def __init__(self) -> None:
        self.done: dict[type[Any], FastStructure | None] = {}

    def compile(self, cls: type[Any]) -> FastStructure | None:
        if cls in self.done:
            return self.done[cls]
        self.done[cls] = None  # a recursive model gets no fast path
        fn = self._generate(cls)
        self.done[cls] = fn
        return fn

    def _generate(self, cls: type[Any]) -> FastStructure | None:
        if not attrs.has(cls) or any(
            hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__")
        ):
            return None
        hints = get_type_hints(cls)
        fields = attrs.fields(cls)
        namespace: dict[str, Any] = {
            "Fallback": Fallback,
            "_str_tuple": _str_tuple,
            "_object_tuple": _object_tuple,
            "cls": cls,
            "new": object.__new__,
        }
        lines = ["def fast(d):"]
        for i, field in enumerate(fields):
            if not field.init or field.alias != field.name or field.kw_only:
                return None
            body = self._field(i, field, hints[field.name], namespace)
            if body is None:
                return None
            lines.append(f"    v = d.get({field.name!r})")
            lines += [f"    {line}" for line in body]
        direct = "__slots__" in vars(cls) and all(
            f.validator is None and f.converter is None for f in fields
        )
        if direct:
            # attrs' frozen __init__ sets each slot through object.__setattr__; setting the
            # slots directly builds the same instance in half the time. Only without
            # validators, converters or a post-init hook, which this would skip.
            lines.append("    o = new(cls)")
            for i, field in enumerate(fields):
                namespace[f"set{i}"] = vars(cls)[field.name].__set__
                lines.append(f"    set{i}(o, v{i})")
            lines.append("    return o")
        else:
            lines.append(f"    return cls({', '.join(f'v{i}' for i in range(len(fields)))})")
        source = "\n".join(lines) + "\n"
        filename = f"<kuaishou_mp fast structure {cls.__qualname__}>"
        # In linecache, so a traceback through the generated code shows its lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), namespace)
        fast: FastStructure = namespace["fast"]
        return fast

    def _field(
        self, i: int, field: attrs.Attribute[Any], tp: Any, namespace: dict[str, Any]
    ) -> list[str] | None:
        """Lines that set ``v<i>`` from ``v`` (the field's wire value or ``None``)."""
        optional = _optional_of(tp)
        inner = optional if optional is not None else tp
        # What the converter makes of null; the fast path folds "missing" into the same branch,
        # so the field's default has to be that very value.
        null: Any
        if optional is not None:
            null = None
        elif inner is str:
            null = ""
        elif _str_tuple_type(inner) or _object_tuple_type(inner):
            null = ()
        else:
            null = attrs.NOTHING
        default = field.default
        if null is attrs.NOTHING or default is attrs.NOTHING or type(default) is not type(null):
            return None
        if default != null:
            return None
        accept = self._accept(i, inner, optional is not None, namespace)
        if accept is None:
            return None
        wire_type, assign = accept
        # The usual shape is tested first: one type check for a well-formed field.
        return [
            f"if type(v) is {wire_type}:",
            *(f"    {line}" for line in assign),
            f"elif v is None: v{i} = {null!r}",
            "else: raise Fallback",
        ]

    def _accept(
        self, i: int, inner: Any, optional: bool, namespace: dict[str, Any]
    ) -> tuple[str, list[str]] | None:
        """The JSON type a non-null value must have, and the lines that set ``v<i>`` from it."""
        if inner is str or inner is int:
            return inner.__name__, [f"v{i} = v"]
        if isinstance(inner, type) and issubclass(inner, enum.IntEnum):
            namespace[f"members{i}"] = dict(inner._value2member_map_)
            return "int", [f"v{i} = members{i}.get(v)", f"if v{i} is None: raise Fallback"]
        if _str_tuple_type(inner):
            return "list", [f"v{i} = _str_tuple(v)"]
        item = _object_tuple_type(inner)
        if item is not None:
            build = self.compile(item)
            if build is None:
                return None
            namespace[f"build{i}"] = build
            return "list", [f"v{i} = _object_tuple(build{i}, v)"]
        if attrs.has(inner) and optional:
            build = self.compile(inner)
            if build is None:
                return None
            namespace[f"build{i}"] = build
            return "dict", [f"v{i} = build{i}(v)"]
        return None


def _optional_of(tp: Any) -> Any:
    args = get_args(tp)
    if get_origin(tp) in (Union, UnionType) and len(args) == 2 and type(None) in args:
        return args[0] if args[1] is type(None) else args[1]
    return None


def _str_tuple_type(tp: Any) -> bool:
    return get_origin(tp) is tuple and get_args(tp) == (str, ...)


def _object_tuple_type(tp: Any) -> type[Any] | None:
    args = get_args(tp)
    if get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis and attrs.has(args[0]):
        item: type[Any] = args[0]
        return item
    return None
