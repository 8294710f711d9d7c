"""Every code example in the documentation runs here, against the bundled fake: docs cannot rot.

What is collected:

* every fenced ``python`` block of ``docs/**/*.md`` (and of ``README.md``), in page order. Each
  block is a complete script: it starts its own :class:`~kuaishou_mp.testing.FakeKuaishou` and
  calls ``asyncio.run(...)`` itself, exactly as a reader would run it. It executes with
  ``__name__ == "docs_example"`` (so ``if __name__ == "__main__":`` guards, such as a web
  server's ``run_app``, do not fire) in a fresh temporary working directory.
* an HTML comment on the line before a block (a blank line may separate them) changes that:

  - ``<!-- docs-test: continue -->`` runs the block in the namespace of the block before it on
    the same page (a recipe, then the code that exercises it);
  - ``<!-- docs-test: pytest -->`` runs the block as a pytest test module (with pytester), in
    the configuration the page recommends (``asyncio_mode = "auto"``);
    ``<!-- docs-test: pytest app.py -->`` saves the block as ``app.py`` beside the test
    module, which is the ``continue`` block after it (an app, then its test);
  - ``<!-- docs-test: redis -->`` needs a Redis server: its URL is put in ``REDIS_URL`` (from
    ``KUAISHOU_TEST_REDIS_URL``, or a ``redis-server`` started for the session); without one the
    block is skipped, or fails when ``KUAISHOU_REQUIRE_REDIS`` is set, as in CI;
  - ``<!-- docs-test: skip REASON -->`` does not run the block (code that must reach the real
    platform). It is still compiled, and every name it imports from ``kuaishou_mp`` must
    exist.
* every ``kuaishou-mp ...`` command line in ``bash`` blocks is parsed by the real click
  commands: an unknown command or option, or a bad value, fails.
* ``README.md``'s example calls the real platform's default base URL and a ``load_authorizers()``
  it leaves to the reader: it runs against a fake served from a background thread, with the
  client's default ``base_url`` pointed at it and ``load_authorizers`` defined here.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import logging
import re
import shlex
import signal
import textwrap
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click
import pytest
import redis

import kuaishou_mp
from kuaishou_mp import Authorizer, Client
from kuaishou_mp.testing import FakeKuaishou

pytest_plugins = ["pytester"]

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
TIMEOUT = 60  # seconds per example; a hung example fails instead of hanging the suite

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)[^\n]*$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<kind>[\w-]+)\s*(?P<arg>.*?)\s*-->\s*$")
_KINDS = {"continue", "pytest", "redis", "skip"}


@attrs.frozen
class Block:
    """One fenced code block of a page."""

    path: Path
    line: int  # 1-based line of the first code line
    lang: str
    code: str
    marker: str | None = None
    marker_arg: str = ""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the docs-test marker before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = match["indent"], match["fence"], match["lang"].lower()
        start = i + 1
        end = start
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        body = [
            line[len(indent) :] if line.startswith(indent) else line for line in lines[start:end]
        ]
        marker, arg = None, ""
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        if k >= 0 and (m := _MARKER.match(lines[k])):
            marker, arg = m["kind"], m["arg"]
            if marker not in _KINDS:
                raise AssertionError(f"{path}:{k + 1}: unknown docs-test marker {marker!r}")
        found.append(Block(path, start + 1, lang, "\n".join(body) + "\n", marker, arg))
        i = end + 1
    return found


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def python_chains() -> list[list[Block]]:
    """Python blocks grouped into chains: a block and the ``continue`` blocks after it."""
    chains: list[list[Block]] = []
    for page in pages():
        previous: list[Block] | None = None
        for block in blocks_of(page):
            if block.lang not in ("python", "py"):
                continue
            if block.marker == "continue":
                assert previous is not None, f"{block.where}: 'continue' needs a block before it"
                previous.append(block)
                continue
            previous = [block]
            chains.append(previous)
    return chains


def compiled(block: Block) -> Any:
    """The block's code object, with line numbers that point into the Markdown page."""
    source = "\n" * (block.line - 1) + block.code
    return compile(source, str(block.path), "exec", dont_inherit=True)


@contextlib.contextmanager
def time_limit(seconds: int, where: str) -> Iterator[None]:
    """Fail an example that runs longer than ``seconds`` (Unix; elsewhere no limit)."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"{where}: the example ran longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def preserved_logging() -> Iterator[None]:
    """Undo what an example does to logging (``basicConfig``, levels) once it has run."""
    root, sdk = logging.getLogger(), logging.getLogger("kuaishou_mp")
    handlers, levels = list(root.handlers), (root.level, sdk.level)
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(levels[0])
        sdk.setLevel(levels[1])


def run_blocks(chain: list[Block], namespace: dict[str, Any]) -> None:
    with preserved_logging():
        for block in chain:
            with time_limit(TIMEOUT, block.where):
                exec(compiled(block), namespace)


def check_kuaishou_imports(block: Block) -> None:
    """Every name a (not executed) block imports from ``kuaishou_mp`` must exist."""
    for node in ast.walk(ast.parse(block.code)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kuaishou_mp"):
            assert node.module is not None
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert alias.name == "*" or hasattr(module, alias.name), (
                    f"{block.where}: {node.module} has no {alias.name!r}"
                )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kuaishou_mp"):
                    importlib.import_module(alias.name)


def chain_id(chain: list[Block]) -> str:
    return chain[0].where


# -- the Redis some examples need ----------------------------------------------------------------


# -- the examples ---------------------------------------------------------------------------------

PYTEST_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


def forget_example_keys(url: str) -> None:
    """Delete what an earlier run of the examples left in a long-lived test Redis.

    The examples use fixed prefixes starting with ``docs-``; tokens a previous run stored
    there belong to a fake that no longer exists and would be refused.
    """
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        stale = list(client.scan_iter(match="docs-*", count=1000))
        if stale:
            client.delete(*stale)
    finally:
        client.close()


@pytest.mark.parametrize("chain", python_chains(), ids=chain_id)
def test_example_runs(
    chain: list[Block],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    head = chain[0]
    if head.marker == "skip":
        assert head.marker_arg, f"{head.where}: say why the example is skipped"
        for block in chain:
            compiled(block)
            check_kuaishou_imports(block)
        pytest.skip(f"{head.where}: {head.marker_arg}")
    if head.marker == "pytest":
        pytester: pytest.Pytester = request.getfixturevalue("pytester")
        pytester.makeini(PYTEST_INI)
        if head.marker_arg:  # ``pytest app.py``: this block is the module the next one tests
            assert re.fullmatch(r"[a-z_]+\.py", head.marker_arg), head.where
            assert len(chain) == 2, f"{head.where}: a module needs one test block after it"
            pytester.makepyfile(**{head.marker_arg.removesuffix(".py"): head.code})
            pytester.makepyfile(test_docs_example=chain[1].code)
        else:
            assert len(chain) == 1, f"{head.where}: a pytest example cannot be continued"
            pytester.makepyfile(test_docs_example=head.code)
        with time_limit(TIMEOUT, head.where):
            outcome = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
        counts = outcome.parseoutcomes()
        assert counts.get("passed", 0) >= 1, f"{head.where}: {outcome.outlines}"
        assert not {"failed", "errors", "error", "skipped"} & counts.keys(), (
            f"{head.where}: {outcome.outlines}"
        )
        return
    if head.marker == "redis":
        url = request.getfixturevalue("redis_url")
        forget_example_keys(url)
        monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.chdir(tmp_path)
    run_blocks(chain, {"__name__": "docs_example"})


def test_harness_finds_the_examples() -> None:
    """Every guide page has an example that runs, and skipped examples stay the exception."""
    chains = python_chains()
    skipped = [c for c in chains if c[0].marker == "skip"]
    assert len(skipped) <= 3, [c[0].where for c in skipped]
    run = {c[0].path for c in chains if c[0].marker != "skip"}
    guides = [DOCS / "index.md", DOCS / "quickstart.md", *DOCS.glob("concepts/*.md")]
    guides += DOCS.glob("recipes/*.md")
    assert [p.relative_to(ROOT) for p in guides if p not in run] == []


# -- the README ----------------------------------------------------------------------------------


class FakeThread:
    """A FakeKuaishou serving from its own event loop in a daemon thread."""

    def __init__(self, setup: Callable[[FakeKuaishou], None], **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fake = FakeKuaishou(**options)
        setup(self.fake)
        self.base_url = self.run(self.fake.start("127.0.0.1", 0))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        try:
            self.run(self.fake.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()


def readme_blocks() -> list[Block]:
    return [b for b in blocks_of(README) if b.lang in ("python", "py")]


@pytest.mark.skipif(not readme_blocks(), reason="README.md has no python example")
def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = "".join(b.code for b in readme_blocks())
    component = re.search(r"Client\(\s*\"([^\"]+)\"", source)
    tokens = re.findall(r"Authorizer\(\s*\"([^\"]+)\",\s*\"([^\"]+)\"\s*\)", source)
    assert component, 'README: expected Client("<component app id>", ...)'
    others: list[Authorizer] = []

    def setup(fake: FakeKuaishou) -> None:
        for app_id, token in tokens:
            fake.add_authorizer(app_id, token)
        others.extend(Authorizer(a.app_id, a.access_token) for a in fake.add_authorizers(20))

    server = FakeThread(setup, component_app_id=component.group(1))
    try:
        kwdefaults = Client.__init__.__kwdefaults__
        assert kwdefaults is not None
        monkeypatch.setitem(kwdefaults, "base_url", server.base_url)
        monkeypatch.chdir(tmp_path)
        namespace: dict[str, Any] = {
            "__name__": "__main__",
            "load_authorizers": lambda: iter(others),
        }
        run_blocks(readme_blocks(), namespace)
    finally:
        server.close()
    assert server.fake.counters["ok"] >= len(others)


# -- command lines -------------------------------------------------------------------------------

_SHELL_STOP = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>"}


def is_command(tokens: list[str], i: int) -> bool:
    """Whether ``tokens[i]`` runs ``kuaishou-mp`` (not ``pip install kuaishou-mp``)."""
    if tokens[i] != "kuaishou-mp" and not tokens[i].endswith("/kuaishou-mp"):
        return False
    k = i - 1
    while k >= 0 and "=" in tokens[k] and not tokens[k].startswith("-"):
        k -= 1  # environment assignments: VAR=value kuaishou-mp ...
    return k < 0 or tokens[k] in _SHELL_STOP


EXPORTS: dict[str, dict[str, str]] = {}
"""Per command line: the variables an ``export`` earlier in its block set (e.g. secrets)."""


def command_lines() -> list[tuple[str, list[str]]]:
    """``kuaishou-mp`` invocations in the shell blocks of the docs and the README."""
    found: list[tuple[str, list[str]]] = []
    for page in [*pages(), README]:
        for block in blocks_of(page):
            if block.lang not in ("bash", "sh", "shell", "console"):
                continue
            text = re.sub(r"\\\n", " ", block.code)
            exported: dict[str, str] = {}
            for offset, line in enumerate(text.splitlines()):
                line = re.sub(r"^\s*\$\s+", "", line)
                if line.startswith("export "):
                    for word in shlex.split(line, comments=True)[1:]:
                        name, _, value = word.partition("=")
                        exported[name] = value
                if "kuaishou-mp" not in line:
                    continue
                lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
                lexer.whitespace_split = True
                lexer.commenters = "#"
                tokens = list(lexer)
                for i in range(len(tokens)):
                    if is_command(tokens, i):
                        argv: list[str] = []
                        for t in tokens[i + 1 :]:
                            if t in _SHELL_STOP:
                                if argv and argv[-1].isdigit() and t.startswith(">"):
                                    argv.pop()
                                break
                            argv.append(t)
                        found.append((f"{block.where}+{offset}", argv))
                        EXPORTS[f"{block.where}+{offset}"] = dict(exported)
    return found


def parse_command_line(argv: list[str]) -> None:
    """Parse ``argv`` with the real click commands without running them."""
    from kuaishou_mp.cli import cli as group

    command: click.Command = group
    parent: click.Context | None = None
    name = "kuaishou-mp"
    args = list(argv)
    while True:
        if isinstance(command, click.Group):
            split = next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))
            own, rest = args[:split], args[split:]
            ctx = command.make_context(name, [*own, *rest[:1]], parent=parent)
            if not rest:
                return
            sub = command.get_command(ctx, rest[0])
            assert sub is not None, f"no such command: {rest[0]!r}"
            command, parent, name, args = sub, ctx, rest[0], rest[1:]
            continue
        command.make_context(name, args, parent=parent)
        return


@pytest.mark.parametrize(("where", "argv"), command_lines(), ids=[w for w, _ in command_lines()])
def test_command_line_parses(where: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUAISHOU_COMPONENT_APP_ID", "ks_component_docs")
    for name, value in EXPORTS.get(where, {}).items():
        monkeypatch.setenv(name, value)
    code = 0
    try:
        parse_command_line(argv)
    except click.exceptions.Exit as exit_:  # --help, --version
        code = exit_.exit_code
    except click.ClickException as exc:
        pytest.fail(f"{where}: `kuaishou-mp {shlex.join(argv)}`: {exc.format_message()}")
    assert code == 0, f"{where}: `kuaishou-mp {shlex.join(argv)}` exits {code}"


def test_harness_finds_command_lines() -> None:
    assert len(command_lines()) >= 5


def test_public_names_are_documented_in_the_reference() -> None:
    """Every public name of ``kuaishou_mp`` appears in an API reference page."""
    reference = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "reference").glob("*.md"))
    missing = [
        name
        for name in kuaishou_mp.__all__
        if name != "__version__" and not re.search(rf"\b{re.escape(name)}\b", reference)
    ]
    assert missing == []


def test_block_parser_handles_indented_fences_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        textwrap.dedent(
            """\
            # Title

            <!-- docs-test: skip needs the real platform -->

            ```python
            print("a")
            ```

            === "Tab"

                ```python
                print("b")
                ```
            """
        ),
        encoding="utf-8",
    )
    first, second = blocks_of(page)
    assert (first.marker, first.marker_arg, first.line, first.code) == (
        "skip",
        "needs the real platform",
        6,
        'print("a")\n',
    )
    assert (second.marker, second.line, second.code) == (None, 12, 'print("b")\n')
