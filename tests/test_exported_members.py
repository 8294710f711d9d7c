"""Each public module's ``__all__`` is pinned: what it lists exists, and what it defines is listed.

Modelled on httpx's ``tests/test_exported_members.py``. A new public module, a new public name
or a name dropped from ``__all__`` fails here until the lists below say it was meant.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import kuaishou_mp

PUBLIC_MODULES = (
    "kuaishou_mp",
    "kuaishou_mp.auth",
    "kuaishou_mp.auth.client",
    "kuaishou_mp.auth.manager",
    "kuaishou_mp.auth.models",
    "kuaishou_mp.auth.storage",
    "kuaishou_mp.bulk",
    "kuaishou_mp.cli",
    "kuaishou_mp.domains",
    "kuaishou_mp.errors",
    "kuaishou_mp.events",
    "kuaishou_mp.events.dedupe",
    "kuaishou_mp.events.models",
    "kuaishou_mp.events.receiver",
    "kuaishou_mp.hooks",
    "kuaishou_mp.models",
    "kuaishou_mp.otel",
    "kuaishou_mp.ratelimit",
    "kuaishou_mp.redis",
    "kuaishou_mp.retry",
    "kuaishou_mp.retry_budget",
    "kuaishou_mp.testing",
    "kuaishou_mp.testing.pytest_plugin",
    "kuaishou_mp.timeout",
    "kuaishou_mp.tokens",
)

# Public-looking names a module defines on purpose without exporting them.
NOT_EXPORTED: dict[str, set[str]] = {
    # The token manager's per-key locks: importable from the package, not part of its API.
    "kuaishou_mp.auth.storage": {"KeyedLocks"},
    "kuaishou_mp.auth.manager": {"T"},
    "kuaishou_mp.bulk": {"T"},
    "kuaishou_mp.domains": {"D"},
    "kuaishou_mp.events.dedupe": {"T"},
    # Exported by kuaishou_mp.events, the module users import it from.
    "kuaishou_mp.events.receiver": {"SIGNATURE_HEADER"},
    # The pytest fixtures: pytest finds them by the plugin's entry point.
    "kuaishou_mp.testing.pytest_plugin": {"kuaishou_fake", "kuaishou_client"},
}


def _public_modules() -> list[str]:
    found = ["kuaishou_mp"]
    for info in pkgutil.walk_packages(kuaishou_mp.__path__, "kuaishou_mp."):
        parts = info.name.split(".")[1:]
        if not any(part.startswith("_") for part in parts):
            found.append(info.name)
    return sorted(found)


def _defined_names(module_name: str) -> set[str]:
    """Public names the module's own top level binds (a package's imports count as defining)."""
    module = importlib.import_module(module_name)
    path = inspect.getsourcefile(module)
    assert path is not None
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    is_package = Path(path).name == "__init__.py"
    names: set[str] = set()
    nodes = list(tree.body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If):  # definitions behind a version or an optional import
            nodes += node.body + node.orelse
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif is_package and isinstance(node, ast.ImportFrom) and node.level > 0:
            names.update(alias.asname or alias.name for alias in node.names)
    return {name for name in names if not name.startswith("_") and name != "logger"}


def test_the_list_of_public_modules_is_pinned() -> None:
    assert _public_modules() == sorted(PUBLIC_MODULES)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_name_in_all_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "a name is listed twice"
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_defined_is_exported(module_name: str) -> None:
    module = importlib.import_module(module_name)
    unlisted = _defined_names(module_name) - set(module.__all__)
    assert unlisted == NOT_EXPORTED.get(module_name, set())
