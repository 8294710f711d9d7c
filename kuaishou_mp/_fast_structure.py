"""A fast path for the usual, well-formed answer; the cattrs converter decides everything else.

Structuring a basic-info answer with the converter's generated code takes most of the SDK's own
time per call: seven nested objects, each built through a keyword ``__init__`` inside
try/except blocks that collect field paths for error messages. Almost every answer is
well-formed, so for each model we generate one straight-line function that accepts only the
exact shapes the wire normally carries (a ``str`` where a string is, an ``int`` where an integer
is, a known enum value, an object, an array) and builds the instances directly.

Anything else (a float where an integer is, an enum value added later, a wrong type) raises
:class:`NotFast`, and the caller runs the converter, which accepts it under its lenient rules
or names the field paths that do not fit. A model built through its ``__init__`` may also refuse
a value itself (a validator or converter raising ``TypeError`` or ``ValueError``); the caller
treats that like :class:`NotFast`. The fast path never decides an outcome of its own: it
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

__all__ = ["NotFast", "compile_fast"]

FastStructure = Callable[[dict[str, Any]], Any]


class NotFast(Exception):
    """The document is not in the usual shape: let the converter decide."""


def _str_tuple(value: list[Any]) -> tuple[str, ...]:
    for item in value:
        if type(item) is not str:
            raise NotFast
    return tuple(value)


def compile_fast(cls: type[Any]) -> FastStructure | None:
    """Generate the fast structuring function of attrs class ``cls``, or ``None`` if unsupported.

    The function takes a ``dict`` and returns a ``cls`` or raises :class:`NotFast`.
    """
    return _Compiler().compile(cls)


class _Compiler:
    """Writes one function per model, with the nested models' code inlined into it.

    Inlined, a basic-info answer (seven objects) costs one Python call instead of eight. Every
    variable is named after its path from the root (``o_2`` is field 2 of ``o``; ``o_2_d`` the
    dict it is built from; ``o_8_x`` an item of the tuple ``o_8``), so nested code never
    clobbers a value still needed. ``v`` is reused for each field's raw wire value.
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {}
        self.active: set[type[Any]] = set()  # a recursive model gets no fast path

    def compile(self, cls: type[Any]) -> FastStructure | None:
        # A namespace of its own: generated names repeat from one model to the next.
        self.namespace = {"NotFast": NotFast, "_str_tuple": _str_tuple, "new": object.__new__}
        lines = self._object(cls, "d", "o")
        if lines is None:
            return None
        source = "def fast(d):\n" + "".join(f"    {line}\n" for line in [*lines, "return o"])
        filename = f"<kuaishou_mp fast structure {cls.__qualname__}>"
        # In linecache, so a traceback through the generated code shows its lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), self.namespace)
        fast: FastStructure = self.namespace["fast"]
        return fast

    def _bind(self, name: str, value: Any) -> str:
        self.namespace[name] = value
        return name

    def _object(self, cls: type[Any], src: str, out: str) -> list[str] | None:
        """Lines that set ``out`` to a ``cls`` built from the dict in variable ``src``."""
        if (
            not attrs.has(cls)
            or cls in self.active
            or any(hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__"))
        ):
            return None
        self.active.add(cls)
        try:
            return self._object_lines(cls, src, out)
        finally:
            self.active.discard(cls)

    def _object_lines(self, cls: type[Any], src: str, out: str) -> list[str] | None:
        hints = get_type_hints(cls)
        fields = attrs.fields(cls)
        lines: list[str] = []
        for i, field in enumerate(fields):
            if not field.init or field.alias != field.name or field.kw_only:
                return None
            body = self._field(f"{out}_{i}", field, hints[field.name])
            if body is None:
                return None
            lines.append(f"v = {src}.get({field.name!r})")
            lines += body
        values = [f"{out}_{i}" for i in range(len(fields))]
        built = self._bind(f"{out}_cls", cls)
        direct = "__slots__" in vars(cls) and all(
            f.validator is None and f.converter is None for f in fields
        )
        if not direct:
            lines.append(f"{out} = {built}({', '.join(values)})")
            return lines
        # attrs' frozen __init__ sets each slot through object.__setattr__; setting the slots
        # directly builds the same instance in half the time. Only without validators,
        # converters or a post-init hook, which this would skip.
        lines.append(f"{out} = new({built})")
        for i, field in enumerate(fields):
            setter = self._bind(f"{out}_set{i}", vars(cls)[field.name].__set__)
            lines.append(f"{setter}({out}, {values[i]})")
        return lines

    def _field(self, target: str, field: attrs.Attribute[Any], tp: Any) -> list[str] | None:
        """Lines that set ``target`` from ``v`` (the field's wire value or ``None``)."""
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
        accept = self._accept(target, inner, optional is not None)
        if accept is None:
            return None
        wire_type, assign = accept
        # The usual shape is tested first: one type check for a well-formed field.
        return [
            f"if type(v) is {wire_type}:",
            *(f"    {line}" for line in assign),
            f"elif v is None: {target} = {null!r}",
            "else: raise NotFast",
        ]

    def _accept(self, target: str, inner: Any, optional: bool) -> tuple[str, list[str]] | None:
        """The JSON type a non-null value must have, and the lines that set ``target`` from it."""
        if inner is str or inner is int:
            return inner.__name__, [f"{target} = v"]
        if isinstance(inner, type) and issubclass(inner, enum.IntEnum):
            members = self._bind(f"{target}_members", dict(inner._value2member_map_))
            return "int", [f"{target} = {members}.get(v)", f"if {target} is None: raise NotFast"]
        if _str_tuple_type(inner):
            return "list", [f"{target} = _str_tuple(v)"]
        item = _object_tuple_type(inner)
        if item is not None:
            src, built, items = f"{target}_d", f"{target}_x", f"{target}_items"
            lines = self._object(item, src, built)
            if lines is None:
                return None
            # The loop iterates the list ``v`` held when it started; the item code reuses ``v``.
            return "list", [
                f"{items} = []",
                f"for {src} in v:",
                f"    if type({src}) is not dict: raise NotFast",
                *(f"    {line}" for line in lines),
                f"    {items}.append({built})",
                f"{target} = tuple({items})",
            ]
        if attrs.has(inner) and optional:
            src = f"{target}_d"
            lines = self._object(inner, src, target)
            if lines is None:
                return None
            return "dict", [f"{src} = v", *lines]
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
