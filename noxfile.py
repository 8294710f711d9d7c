"""Every check the project runs.

``nox`` runs the test suite on every supported Python, the suite on the declared dependency
floors, the package check, lint, typecheck and docs; ``nox -s bench`` runs the benchmarks.
``nox -s tests`` is the whole test matrix; ``nox -s tests-3.11`` one Python of it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DEFAULT_PYTHON = "3.11"

nox.options.sessions = ["tests", "lowest", "package", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
# uv makes the virtualenvs (and installs) in seconds where pip takes a minute; without it
# (pip install nox uv), nox's default virtualenv backend is used.
if shutil.which("uv") or (Path(sys.executable).parent / "uv").exists():
    nox.options.default_venv_backend = "uv"


def _pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def _put_pyenv_pythons_on_path() -> None:
    """Put each supported Python that pyenv installed first on PATH, newest patch release.

    nox finds ``python3.X`` on PATH; pyenv's shims answer only for the versions selected as
    global, so the real ``versions/3.X.Y/bin`` directories go in front of them.
    """
    root = _pyenv_root()
    if root is None:
        return
    found: dict[str, tuple[int, Path]] = {}
    for path in (root / "versions").glob("3.*"):
        match = re.fullmatch(r"(3\.\d+)\.(\d+)", path.name)
        binary = path / "bin" / f"python{match[1]}" if match else None
        if match and binary is not None and binary.exists() and match[1] in PYTHONS:
            patch = int(match[2])
            if match[1] not in found or found[match[1]][0] < patch:
                found[match[1]] = (patch, path / "bin")
    dirs = [str(bindir) for _, bindir in found.values()]
    os.environ["PATH"] = os.pathsep.join([*dirs, os.environ.get("PATH", "")])


_put_pyenv_pythons_on_path()


def _pytest_with_coverage(session: nox.Session) -> None:
    # coverage run, not pytest-cov: our pytest plugin (an entry point) imports the package
    # before pytest-cov would start measuring.
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite on every supported Python; on the default one with coverage (gate: 90%).

    Redis tests use ``KUAISHOU_TEST_REDIS_URL`` if set, else a private ``redis-server``
    started for the run when one is on PATH; ``KUAISHOU_REQUIRE_REDIS=1`` fails instead of
    skipping when there is neither.
    """
    session.install("-e", ".[test,speed]")
    if session.python == DEFAULT_PYTHON:
        _pytest_with_coverage(session)
    else:
        session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def lowest(session: nox.Session) -> None:
    """The whole suite with every direct dependency at its declared floor (uv lowest-direct)."""
    session.install("uv")
    session.run(
        "uv",
        "pip",
        "install",
        "--python",
        sys_python(session),
        "--resolution",
        "lowest-direct",
        "-e",
        ".[test,speed]",
    )
    session.run("uv", "pip", "freeze", "--python", sys_python(session), silent=False)
    session.run("python", "-m", "pytest", *session.posargs)


def sys_python(session: nox.Session) -> str:
    """The session virtualenv's interpreter, for tools (uv) that install into it from outside."""
    bindir = "Scripts" if sys.platform == "win32" else "bin"
    location = session.virtualenv.location
    assert location is not None
    return str(Path(location) / bindir / "python")


# Modules whose import needs an extra; the wheel check installs those extras for them.
_IMPORT_EXTRAS = "cli,redis,events,otel"

_IMPORT_EVERY_PUBLIC_MODULE = """
import importlib, pkgutil, sys
import kuaishou_mp
assert kuaishou_mp.__file__ and "site-packages" in kuaishou_mp.__file__, kuaishou_mp.__file__
names = ["kuaishou_mp"] + [
    m.name for m in pkgutil.walk_packages(kuaishou_mp.__path__, "kuaishou_mp.")
    if not any(part.startswith("_") for part in m.name.split("."))
]
for name in names:
    importlib.import_module(name)
print(f"imported {len(names)} public modules:", " ".join(names))
"""


@nox.session(python=DEFAULT_PYTHON)
def package(session: nox.Session) -> None:
    """Build the sdist and wheel, check them, and run the wheel from a fresh venv."""
    session.install("build", "twine")
    dist = Path(tempfile.mkdtemp(prefix="kuaishou-dist-"))
    session.run("python", "-m", "build", "--outdir", str(dist))
    artifacts = sorted(str(p) for p in dist.iterdir())
    session.run("twine", "check", "--strict", *artifacts)
    (wheel,) = (p for p in artifacts if p.endswith(".whl"))
    session.run("python", "-c", _CHECK_WHEEL, wheel)

    venv = dist / "venv"
    session.run("python", "-m", "venv", str(venv))
    bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    pip = [str(bindir / "python"), "-m", "pip", "install", "-q"]
    session.run(*pip, f"{wheel}[cli]", external=True)
    workdir = dist / "run"
    workdir.mkdir()
    with session.chdir(workdir):  # not the checkout: the import must come from the wheel
        session.run(str(bindir / "kuaishou-mp"), "demo", "--authorizers", "300", external=True)
        session.run(*pip, f"{wheel}[{_IMPORT_EXTRAS}]", "pytest", external=True)
        session.run(str(bindir / "python"), "-c", _IMPORT_EVERY_PUBLIC_MODULE, external=True)
    shutil.rmtree(dist, ignore_errors=True)


_CHECK_WHEEL = """
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
assert "kuaishou_mp/py.typed" in names, "py.typed is missing from the wheel"
strays = [n for n in names if n.split("/")[0] in {"tests", "benchmarks", "docs"}]
assert not strays, f"the wheel carries {strays[:5]}"
print(f"wheel: {len(names)} files, py.typed present, no tests, benchmarks or docs")
"""


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint (with the ASYNC and bugbear rules) and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=DEFAULT_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package and the tests."""
    session.install("-e", ".[test,speed]", "mypy>=1.11")
    session.run("mypy")


@nox.session(python=DEFAULT_PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly (a broken link or reference fails)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session(python=DEFAULT_PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against the bundled fake server; prints a table, writes benchmarks/results/."""
    session.install("-e", ".[cli,speed,redis]")
    session.run("python", "-m", "benchmarks", *session.posargs)
