"""Benchmarks for kuaishou-mp against the bundled fake server (``nox -s bench``)."""
