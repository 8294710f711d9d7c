"""A Griffe extension for the docs build (not part of the package).

Griffe reads the package statically; two habits of its source need help to render well:

* attrs classes (``@attrs.frozen``, ``@attrs.define``) get their ``__init__`` from attrs at
  runtime, so Griffe sees no parameters and would flag every documented argument. The
  ``__init__`` is rebuilt here from the annotated fields, as Griffe does for dataclasses.
* docstrings use Google style with a few reST habits: cross-reference roles
  (``:class:`Timeout```, ``:meth:`~Client.close```) become optional autorefs links (plain code
  when the target is not rendered, so a strict build never fails on them), and literal blocks
  introduced by a paragraph ending in ``::`` become fenced code blocks.

Loaded by mkdocstrings through ``mkdocs.yml`` (``extensions:``).
"""

from __future__ import annotations

import html
import re
from typing import Any, cast

import griffe

_ATTRS_DECORATORS = {
    "attrs.frozen",
    "attrs.define",
    "attrs.mutable",
    "attr.s",
    "attr.attrs",
    "attr.frozen",
    "attr.define",
}
_ATTRS_FIELDS = {"attrs.field", "attr.ib", "attr.field"}
_ROLE = re.compile(r":(?:class|meth|func|attr|data|exc|mod|obj):`(?P<tilde>~?)(?P<target>[^`]+)`")
_INDENT = re.compile(r"^\s*")
# cast: with python_version 3.10, mypy sees griffe's StrEnum fallback as plain str.
_POSITIONAL = cast(griffe.ParameterKind, griffe.ParameterKind.positional_or_keyword)
_KEYWORD = cast(griffe.ParameterKind, griffe.ParameterKind.keyword_only)


# -- attrs ---------------------------------------------------------------------------------------


def _call_args(expr: object) -> dict[str, Any]:
    if not isinstance(expr, griffe.ExprCall):
        return {}
    args: dict[str, Any] = {}
    for argument in expr.arguments:
        if isinstance(argument, griffe.ExprKeyword):
            args[argument.name] = argument.value
    return args


def _attrs_decorator(cls: griffe.Class) -> griffe.Expr | str | None:
    for decorator in cls.decorators:
        value = decorator.value
        path = value.function.canonical_path if isinstance(value, griffe.ExprCall) else None
        if path is None and isinstance(value, griffe.Expr):
            path = value.canonical_path
        if path in _ATTRS_DECORATORS:
            return value
    return None


def _attrs_init(cls: griffe.Class) -> None:
    decorator = _attrs_decorator(cls)
    if decorator is None or "__init__" in cls.members:
        return
    options = _call_args(decorator)
    if str(options.get("init", "True")) == "False":
        return
    kw_only = str(options.get("kw_only", "False")) == "True"
    parameters = [griffe.Parameter("self", kind=_POSITIONAL)]
    for member in cls.members.values():
        if not isinstance(member, griffe.Attribute) or member.annotation is None:
            continue
        if "property" in member.labels or (
            "class-attribute" in member.labels and "instance-attribute" not in member.labels
        ):
            continue
        value = member.value
        field: dict[str, Any] = {}
        if isinstance(value, griffe.ExprCall) and value.function.canonical_path in _ATTRS_FIELDS:
            field = _call_args(value)
            if str(field.get("init", "True")) == "False":
                continue
            if "factory" in field:
                default: Any = griffe.ExprCall(function=field["factory"], arguments=[])
            else:
                default = field.get("default")
        else:
            default = value
        name = str(field.get("alias", "")).strip("'\"") or member.name.lstrip("_")
        kind = _KEYWORD if kw_only or str(field.get("kw_only", "False")) == "True" else _POSITIONAL
        parameters.append(
            griffe.Parameter(name, annotation=member.annotation, kind=kind, default=default)
        )
    cls.set_member(
        "__init__",
        griffe.Function(
            "__init__",
            lineno=0,
            endlineno=0,
            parent=cls,
            parameters=griffe.Parameters(*parameters),
            returns="None",
        ),
    )


# -- docstrings ----------------------------------------------------------------------------------


def _resolve(obj: griffe.Object, target: str) -> str:
    """The full path of ``target`` as seen from ``obj``; a best guess when Griffe cannot tell."""
    if target.startswith("kuaishou_mp."):
        return target
    head, _, rest = target.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            resolved = scope.resolve(head)
        except (griffe.NameResolutionError, AttributeError, KeyError):
            scope = scope.parent
            continue
        return f"{resolved}.{rest}" if rest else resolved
    return f"kuaishou_mp.{target}"


def _roles(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        target = match["target"].strip()
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        identifier = html.escape(_resolve(obj, target), quote=True)
        code = html.escape(shown)
        return f'<autoref identifier="{identifier}" optional><code>{code}</code></autoref>'

    return _ROLE.sub(link, text)


def _indent(line: str) -> int:
    match = _INDENT.match(line)
    return len(match.group(0)) if match else 0


def _literal_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and i + 1 < len(lines) and not lines[i + 1].strip():
            base = _indent(line)
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
                j += 1
            block = lines[i + 1 : j]
            while block and not block[-1].strip():
                block.pop()
                j -= 1
            body = [b for b in block if b.strip()]
            if body:
                strip = min(_indent(b) for b in body)
                code = [b[strip:] if b.strip() else "" for b in block]
                while code and not code[0]:
                    code.pop(0)
                lang = "text" if any(c in "".join(code) for c in "├└│") else "python"
                lead = line.rstrip()[:-1]  # "text::" -> "text:"; a bare "::" disappears
                pad = " " * base
                if lead.strip() != ":":
                    out.append(lead)
                out += ["", f"{pad}```{lang}", *(f"{pad}{c}" if c else "" for c in code)]
                out.append(f"{pad}```")
                i = j
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


class KuaishouDocs(griffe.Extension):
    """Rebuild attrs ``__init__`` signatures and render reST habits in every docstring."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if isinstance(obj, griffe.Class):
            _attrs_init(obj)
        if obj.docstring is not None:
            obj.docstring.value = _roles(obj, _literal_blocks(obj.docstring.value))
        for member in list(obj.members.values()):
            if not member.is_alias:
                self._walk(member, seen)  # type: ignore[arg-type]
