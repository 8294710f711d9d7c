"""The package's import graph has no cycle, imports under ``TYPE_CHECKING`` and inside
functions included: a cycle means two modules that cannot be read (or loaded) one at a time."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import kuaishou_mp

ROOT = Path(kuaishou_mp.__file__).parent


def _module_names() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            bases = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            bases = [base]
            names = [alias.name for alias in node.names]
        else:
            continue
        for base in bases:
            if base in modules:
                targets.add(base)
            # ``from package import submodule`` imports the submodule too.
            targets.update(f"{base}.{n}" for n in names if f"{base}.{n}" in modules)
    targets.discard(name)
    return targets


def import_cycles() -> list[tuple[str, ...]]:
    """Each cycle once, as the strongly connected components of more than one module."""
    modules = _module_names()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def test_the_import_graph_has_no_cycle() -> None:
    assert import_cycles() == []


def test_a_cycle_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "kuaishou_mp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n"
    )
    (package / "b.py").write_text("def f() -> None:\n    from .a import x\n")
    (package / "c.py").write_text("from . import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", package)
    assert import_cycles() == [("kuaishou_mp.a", "kuaishou_mp.b")]


# The fake's endpoint set may grow with the platform; everything else stays readable at once.
_EXEMPT = {"kuaishou_mp.testing._basic_info", "kuaishou_mp.testing._oauth"}


def test_no_module_is_over_500_lines() -> None:
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in _module_names().items()
        if name not in _EXEMPT
    }
    assert sizes, "no module found"
    assert {name: n for name, n in sizes.items() if n > 500} == {}
