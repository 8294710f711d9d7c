"""Every check the project runs: ``nox`` runs tests, lint, typecheck and docs; ``nox -s bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite with coverage (gate: 90%). Redis tests need KUAISHOU_TEST_REDIS_URL."""
    session.install("-e", ".[test,speed]")
    # coverage run, not pytest-cov: our pytest plugin (an entry point) imports the package
    # before pytest-cov would start measuring.
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint (with the ASYNC and bugbear rules) and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package and the tests."""
    session.install("-e", ".[test,speed]", "mypy>=1.11")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly (a broken link or reference fails)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the bundled fake server; prints a table, writes benchmarks/results/."""
    session.install("-e", ".[cli,speed]")
    session.run("python", "-m", "benchmarks", *session.posargs)
