"""The ``kuaishou-mp`` command line, end to end against the fake platform.

The CLI runs its own event loop (``asyncio.Runner``), so each command is invoked in-process with
click's CliRunner while the fake serves from a background thread with a loop of its own. Every
invocation is checked for leaked tokens.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import hardening_support
import pytest
from click.testing import CliRunner, Result

from kuaishou_mp.cli import main
from kuaishou_mp.cli._app import cli
from kuaishou_mp.testing import FakeAuthorizer, Fault

T = TypeVar("T")

# Unix: the interrupt and fake-server tests send signals.
unix_only = pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")


class FakeThread(hardening_support.FakeThread):
    """The shared fake-in-a-thread, with shortcuts for these tests."""

    def add(self, n: int) -> list[FakeAuthorizer]:
        return self.call(lambda: self.fake.add_authorizers(n))

    def tokens(self) -> list[str]:
        return self.call(lambda: [a.access_token for a in self.fake.authorizers.values()])

    def requests(self) -> int:
        return self.call(lambda: self.fake.counters["requests"])


@pytest.fixture
def server() -> Iterator[FakeThread]:
    fake = FakeThread()
    try:
        yield fake
    finally:
        fake.close()


def write_jsonl(path: Path, apps: list[FakeAuthorizer]) -> Path:
    lines = [json.dumps({"app_id": a.app_id, "access_token": a.access_token}) for a in apps]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def parse_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def invoke(
    server: FakeThread,
    *args: str,
    input: bytes | str | None = None,
    env: dict[str, str | None] | None = None,
    files: tuple[Path, ...] = (),
) -> Result:
    """Run the CLI against ``server``; fails if any token shows in stdout, stderr or ``files``."""
    base_env: dict[str, str | None] = {
        "KUAISHOU_COMPONENT_APP_ID": server.fake.component_app_id,
        "KUAISHOU_BASE_URL": server.base_url,
    }
    result = CliRunner().invoke(
        cli, list(args), input=input, env={**base_env, **(env or {})}, catch_exceptions=False
    )
    texts = [result.stdout, result.stderr]
    texts += [f.read_text(encoding="utf-8") for f in files if f.exists()]
    for token in server.tokens():
        for text in texts:
            assert token not in text
    return result


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in (
        "demo",
        "app-info",
        "server-domain",
        "webview-domain",
        "reconcile",
        "fake-server",
    ):
        assert command in result.stdout


def test_the_group_is_exposed_for_documentation_tools() -> None:
    import kuaishou_mp.cli

    assert kuaishou_mp.cli.cli is cli
    with pytest.raises(AttributeError):
        _ = kuaishou_mp.cli.nothing_here


def test_main_runs_the_group(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert "kuaishou-mp" in capsys.readouterr().out


def test_app_info_writes_one_line_per_authorizer(server: FakeThread, tmp_path: Path) -> None:
    apps = server.add(40)
    out = tmp_path / "out.jsonl"
    result = invoke(
        server,
        "app-info",
        "--authorizers",
        str(write_jsonl(tmp_path / "a.jsonl", apps)),
        "--output",
        str(out),
        "--concurrency",
        "8",
        files=(out,),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    lines = parse_lines(out.read_text(encoding="utf-8"))
    assert sorted(line["app_id"] for line in lines) == sorted(a.app_id for a in apps)
    for line in lines:
        assert line["ok"] is True
        assert set(line) == {"app_id", "ok", "result"}
        assert line["result"]["app_name"] == f"小程序 {line['app_id']}"
        assert line["result"]["status"] == 2


def test_app_info_reads_csv_from_stdin_and_writes_stdout(server: FakeThread) -> None:
    apps = server.add(5)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["note", "access_token", "app_id"])  # any order, extra columns ignored
    for a in apps:
        writer.writerow(["x", a.access_token, a.app_id])
    result = invoke(server, "app-info", "--authorizers", "-", "--qps", "50", input=buf.getvalue())
    assert result.exit_code == 0, result.stderr
    lines = parse_lines(result.stdout)
    assert sorted(line["app_id"] for line in lines) == sorted(a.app_id for a in apps)
    assert result.stderr == ""  # not a terminal and no --progress: nothing but the JSON


def test_progress_prints_a_summary_on_stderr_only(server: FakeThread, tmp_path: Path) -> None:
    apps = server.add(5)
    server.call(lambda: server.fake.revoke_token(apps[0].app_id))
    authorizers = write_jsonl(tmp_path / "a.jsonl", apps)
    result = invoke(server, "app-info", "--authorizers", str(authorizers), "--progress")
    assert result.exit_code == 1
    assert len(parse_lines(result.stdout)) == 5
    assert "app-info: 5 done: 4 ok, 1 failed (AuthError 1)" in result.stderr
    quiet = invoke(server, "app-info", "--authorizers", str(authorizers), "--quiet")
    assert quiet.stderr == ""


def test_some_failures_exit_1_with_typed_errors(server: FakeThread, tmp_path: Path) -> None:
    apps = server.add(6)
    revoked, wrong_shape = apps[1].app_id, apps[2].app_id

    def plant() -> None:
        server.fake.revoke_token(revoked)
        # Not retried, and not an APIError: code is null.
        server.fake.inject(wrong_shape, Fault.raw(b'{"result": 1, "app_name": 5}'))

    server.call(plant)
    authorizers = write_jsonl(tmp_path / "a.jsonl", apps)
    result = invoke(server, "app-info", "--authorizers", str(authorizers))
    assert result.exit_code == 1
    by_id = {line["app_id"]: line for line in parse_lines(result.stdout)}
    assert len(by_id) == 6
    assert by_id[revoked] == {
        "app_id": revoked,
        "ok": False,
        "error": {
            "type": "AuthError",
            "code": 100200102,
            "message": "request refused, invalid access token",
        },
    }
    shape_error = by_id[wrong_shape]["error"]
    assert shape_error["type"] == "ResponseValidationError"
    assert shape_error["code"] is None
    assert "app_name" in shape_error["message"]
    assert sum(line["ok"] for line in by_id.values()) == 4


def test_a_token_echoed_by_the_platform_is_scrubbed(server: FakeThread, tmp_path: Path) -> None:
    (app,) = server.add(1)
    echo = Fault.result(100200102, f"token {app.access_token} refused")
    server.call(lambda: server.fake.inject(app.app_id, echo))
    out = tmp_path / "out.jsonl"
    authorizers = write_jsonl(tmp_path / "a.jsonl", [app])
    result = invoke(
        server, "app-info", "--authorizers", str(authorizers), "-o", str(out), files=(out,)
    )
    assert result.exit_code == 1
    (line,) = parse_lines(out.read_text(encoding="utf-8"))
    assert line["error"]["message"] == "token *** refused"


def test_resume_continues_a_partial_file(server: FakeThread, tmp_path: Path) -> None:
    apps = server.add(30)
    authorizers = write_jsonl(tmp_path / "a.jsonl", apps)
    out = tmp_path / "out.jsonl"
    # What an interrupted run leaves: complete lines (one of them a failure), then a line cut
    # short by a kill in mid-write.
    done = [{"app_id": a.app_id, "ok": True, "result": {}} for a in apps[:10]]
    failed = {"app_id": apps[10].app_id, "ok": False, "error": {"type": "X", "code": None}}
    partial = "".join(json.dumps(d) + "\n" for d in [*done, failed])
    out.write_text(partial + '{"app_id": "' + apps[11].app_id + '", "o', encoding="utf-8")
    before = server.requests()
    result = invoke(
        server,
        "app-info",
        "--authorizers",
        str(authorizers),
        "-o",
        str(out),
        "--resume",
        "--progress",
        files=(out,),
    )
    # The failed line from the earlier run still makes the job as a whole fail.
    assert result.exit_code == 1, result.stderr
    assert "11 skipped as already in the output (1 of them failed)" in result.stderr
    assert server.requests() - before == 19
    lines = parse_lines(out.read_text(encoding="utf-8"))
    assert [line["app_id"] for line in lines[:11]] == [a.app_id for a in apps[:11]]
    assert sorted(line["app_id"] for line in lines) == sorted(a.app_id for a in apps)
    # Nothing left to do: exit code still reports the earlier failure, no call is made.
    again = invoke(
        server, "app-info", "--authorizers", str(authorizers), "-o", str(out), "--resume"
    )
    assert again.exit_code == 1
    assert server.requests() - before == 19
    assert len(parse_lines(out.read_text(encoding="utf-8"))) == 30


def test_resume_of_a_missing_file_starts_fresh(server: FakeThread, tmp_path: Path) -> None:
    apps = server.add(3)
    out = tmp_path / "new.jsonl"
    authorizers = write_jsonl(tmp_path / "a.jsonl", apps)
    result = invoke(
        server, "app-info", "--authorizers", str(authorizers), "-o", str(out), "--resume"
    )
    assert result.exit_code == 0
    assert len(parse_lines(out.read_text(encoding="utf-8"))) == 3


def test_resume_refuses_a_foreign_output_file(server: FakeThread, tmp_path: Path) -> None:
    apps = server.add(2)
    out = tmp_path / "out.jsonl"
    out.write_text('{"app_id": "a", "ok": true}\nhello\n', encoding="utf-8")
    authorizers = write_jsonl(tmp_path / "a.jsonl", apps)
    result = invoke(
        server, "app-info", "--authorizers", str(authorizers), "-o", str(out), "--resume"
    )
    assert result.exit_code == 2
    assert "line 2" in result.stderr
    assert out.read_text(encoding="utf-8").endswith("hello\n")


def test_unwritable_output_exits_2_before_any_call(server: FakeThread, tmp_path: Path) -> None:
    authorizers = write_jsonl(tmp_path / "a.jsonl", server.add(1))
    result = invoke(server, "app-info", "--authorizers", str(authorizers), "-o", str(tmp_path))
    assert result.exit_code == 2
    assert "cannot write the output file" in result.stderr
    assert server.requests() == 0


def test_byte_order_mark_and_crlf_are_accepted(server: FakeThread, tmp_path: Path) -> None:
    apps = server.add(2)
    rows = "".join(f"{a.app_id},{a.access_token}\r\n" for a in apps)
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"app_id,access_token\r\n{rows}".encode())
    result = invoke(server, "app-info", "--authorizers", str(path))
    assert result.exit_code == 0, result.stderr
    assert len(parse_lines(result.stdout)) == 2


def test_resume_needs_an_output_file(server: FakeThread, tmp_path: Path) -> None:
    authorizers = write_jsonl(tmp_path / "a.jsonl", server.add(1))
    result = invoke(server, "app-info", "--authorizers", str(authorizers), "--resume")
    assert result.exit_code == 2
    assert "--resume needs --output" in result.stderr


SECRET = "SECRET_tok_9d8e7f"

BAD_FILES: dict[str, tuple[bytes, int, str]] = {
    "bad JSON line": (
        b'{"app_id": "a", "access_token": "t1"}\n'
        b'{"app_id": "b", "access_token": "t2"}\n'
        b'{"app_id": "c", "access_token": "' + SECRET.encode() + b'"\n',
        3,
        "not valid JSON",
    ),
    "missing field": (
        b'{"app_id": "a", "access_token": "t1"}\n{"app_id": "' + SECRET.encode() + b'"}\n',
        2,
        "missing field 'access_token'",
    ),
    "token not a string": (b'{"app_id": "a", "access_token": 5}\n', 1, "must be a string"),
    "not an object": (b'{"app_id": "a", "access_token": "t"}\n\n["a", "b"]\n', 3, "an array"),
    "missing column": (
        b"app_id,token\nks1," + SECRET.encode() + b"\n",
        1,
        "no access_token column",
    ),
    "no header": (b"ks1," + SECRET.encode() + b"\n", 1, "no app_id and no access_token"),
    "short CSV row": (b"app_id,access_token\nks1,t1\nks2\n", 3, "expected 2 CSV fields"),
    "empty CSV value": (b"app_id,access_token\nks1,t1\nks2,\n", 3, "empty access_token"),
    "empty JSON value": (b'{"app_id": "a", "access_token": " "}\n', 1, "empty access_token"),
    "unbalanced quote": (
        b'app_id,access_token\nks1,"' + SECRET.encode() + b"\nks2,t2\n",
        3,
        "not valid CSV (unexpected end of data)",
    ),
    "control character": (b"app_id,access_token\nks1,t\x001\n", 2, "control characters"),
    "empty file": (b"", 1, "the file is empty"),
    "blank file": (b"\n  \n", 1, "the file is empty"),
    "header only": (b"app_id,access_token\n", 1, "no authorizers"),
    "duplicate app id": (
        b"app_id,access_token\nks1,t1\nks2,t2\nks1,t3\n",
        4,
        "duplicate app_id 'ks1' (first on line 2)",
    ),
    "not UTF-8": (b"app_id,access_token\nks1,t1\nks2,\xff\xfe\n", 3, "not UTF-8"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_authorizers_file_exits_2_with_the_line(
    case: str, server: FakeThread, tmp_path: Path
) -> None:
    data, line, problem = BAD_FILES[case]
    path = tmp_path / "authorizers"
    path.write_bytes(data)
    out = tmp_path / "out.jsonl"
    result = invoke(server, "app-info", "--authorizers", str(path), "-o", str(out))
    assert result.exit_code == 2
    assert f"line {line}: " in result.stderr
    assert problem in result.stderr
    assert SECRET not in result.stderr
    assert not out.exists()  # nothing touched
    assert server.requests() == 0  # nothing called


def test_unreadable_authorizers_file_exits_2(server: FakeThread, tmp_path: Path) -> None:
    result = invoke(server, "app-info", "--authorizers", str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_component_app_id_is_required(server: FakeThread, tmp_path: Path) -> None:
    authorizers = write_jsonl(tmp_path / "a.jsonl", server.add(1))
    result = invoke(
        server,
        "app-info",
        "--authorizers",
        str(authorizers),
        env={"KUAISHOU_COMPONENT_APP_ID": None},
    )
    assert result.exit_code == 2
    assert "--component-app-id" in result.stderr


def test_bad_base_url_exits_2(server: FakeThread, tmp_path: Path) -> None:
    authorizers = write_jsonl(tmp_path / "a.jsonl", server.add(1))
    result = invoke(server, "app-info", "--authorizers", str(authorizers), "--base-url", "ftp://x")
    assert result.exit_code == 2
    assert "base_url" in result.stderr


def test_server_domain_actions(server: FakeThread, tmp_path: Path) -> None:
    apps = server.add(4)
    authorizers = str(write_jsonl(tmp_path / "a.jsonl", apps))

    def domains(action: str, *options: str) -> tuple[int, list[dict[str, Any]]]:
        result = invoke(server, "server-domain", action, *options, "--authorizers", authorizers)
        lines = parse_lines(result.stdout)
        assert sorted(line["app_id"] for line in lines) == sorted(a.app_id for a in apps)
        return result.exit_code, lines

    code, lines = domains(
        "add", "--request", "a.example.com,b.example.com", "--udp", "u.example.com"
    )
    assert code == 0
    for line in lines:
        assert line["result"]["request"][-2:] == ["a.example.com", "b.example.com"]
        assert line["result"]["udp"] == ["u.example.com"]
    code, lines = domains("delete", "--request", "a.example.com")
    assert code == 0
    assert all("a.example.com" not in line["result"]["request"] for line in lines)
    code, lines = domains("delete", "--request", "a.example.com")
    assert code == 1
    for line in lines:
        assert line["error"] == {
            "type": "DomainNotFoundError",
            "code": 403106,
            "message": "domain not exist",
        }
    code, lines = domains("set", "--udp", "")  # an empty value sends an empty list: clears it
    assert code == 0
    assert all(line["result"]["udp"] == [] for line in lines)
    code, lines = domains("get")
    assert code == 0
    assert set(lines[0]["result"]) == {"request", "socket", "upload_file", "download_file", "udp"}
    state = server.call(lambda: server.fake.authorizer(apps[0].app_id).server_domains)
    assert state["request"][-1] == "b.example.com"
    assert state["udp"] == []


def test_webview_domain_actions(server: FakeThread, tmp_path: Path) -> None:
    apps = server.add(3)
    authorizers = str(write_jsonl(tmp_path / "a.jsonl", apps))
    result = invoke(
        server, "webview-domain", "set", "--webview", "w.example.com", "--authorizers", authorizers
    )
    assert result.exit_code == 0
    assert all(
        line["result"] == {"webview": ["w.example.com"]} for line in parse_lines(result.stdout)
    )
    result = invoke(
        server, "webview-domain", "add", "--webview", "x.example.com", "--authorizers", authorizers
    )
    assert result.exit_code == 0
    result = invoke(server, "webview-domain", "get", "--authorizers", authorizers)
    assert result.exit_code == 0
    for line in parse_lines(result.stdout):
        assert line["result"] == {"webview": ["w.example.com", "x.example.com"]}


@pytest.mark.parametrize(
    "args",
    [
        ["server-domain", "get", "--request", "a.example.com"],
        ["server-domain", "add"],
        ["server-domain", "add", "--request", "https://a.example.com/path"],
        ["webview-domain", "get", "--webview", "a.example.com"],
        ["webview-domain", "frobnicate", "--webview", "a.example.com"],
        ["reconcile", "webview", "--mode", "exact"],
        ["reconcile", "server", "--socket", "bad domain"],
    ],
)
def test_domain_usage_errors_touch_nothing(
    args: list[str], server: FakeThread, tmp_path: Path
) -> None:
    authorizers = str(write_jsonl(tmp_path / "a.jsonl", server.add(2)))
    out = tmp_path / "out.jsonl"
    out.write_text("kept\n", encoding="utf-8")
    result = invoke(server, *args, "--authorizers", authorizers, "-o", str(out))
    assert result.exit_code == 2
    assert out.read_text(encoding="utf-8") == "kept\n"
    assert server.requests() == 0


def test_reconcile_dry_run_prints_the_plan_and_changes_nothing(
    server: FakeThread, tmp_path: Path
) -> None:
    apps = server.add(5)
    authorizers = str(write_jsonl(tmp_path / "a.jsonl", apps))
    goal = ("reconcile", "webview", "--webview", "new.example.com", "--authorizers", authorizers)
    dry = invoke(server, *goal, "--dry-run", "--progress")
    assert dry.exit_code == 0
    assert "would change 5" in dry.stderr
    for line in parse_lines(dry.stdout):
        plan = line["result"]
        slug = line["app_id"]
        assert plan["mode"] == "ensure"
        assert plan["dry_run"] is True
        assert plan["changed"] is False
        assert plan["changes"] == {"add": {"webview": ["new.example.com"]}, "delete": {}}
        assert plan["calls"] == [{"action": "add", "webview": ["new.example.com"]}]
        assert plan["before"]["webview"] == [f"www.{slug}.example.com", f"m.{slug}.example.com"]
        assert plan["expected"]["webview"][-1] == "new.example.com"
        assert plan["after"] is None
    webviews = server.call(lambda: [a.webview_domains for a in server.fake.authorizers.values()])
    assert all("new.example.com" not in webview for webview in webviews)
    applied = invoke(server, *goal)
    assert applied.exit_code == 0
    assert all(line["result"]["changed"] for line in parse_lines(applied.stdout))
    again = invoke(server, *goal, "--progress")
    assert "already as desired 5" in again.stderr
    assert not any(line["result"]["changed"] for line in parse_lines(again.stdout))


def test_reconcile_server_exact_and_remove(server: FakeThread, tmp_path: Path) -> None:
    (app,) = server.add(1)
    authorizers = str(write_jsonl(tmp_path / "a.jsonl", [app]))
    slug = app.app_id
    result = invoke(
        server,
        "reconcile",
        "server",
        "--mode",
        "exact",
        "--request",
        "only.example.com",
        "--authorizers",
        authorizers,
    )
    assert result.exit_code == 0
    (line,) = parse_lines(result.stdout)
    plan = line["result"]
    assert plan["changes"]["delete"] == {
        "request": [f"api.{slug}.example.com", f"log.{slug}.example.com"],
        "download_file": [f"cdn.{slug}.example.com"],
    }
    assert plan["calls"][0]["action"] == "set"
    assert plan["after"]["request"] == ["only.example.com"]
    result = invoke(
        server,
        "reconcile",
        "server",
        "--mode",
        "remove",
        "--request",
        "only.example.com",
        "--authorizers",
        authorizers,
    )
    assert result.exit_code == 0
    assert parse_lines(result.stdout)[0]["result"]["after"]["request"] == []


def test_demo_runs_to_a_summary() -> None:
    result = CliRunner().invoke(cli, ["demo", "--authorizers", "200", "--progress"])
    assert result.exit_code == 0, result.output
    assert "Summary" in result.stdout
    assert "app-info" in result.stdout
    assert "reconcile webview" in result.stdout
    assert "AuthError" in result.stdout  # the revoked token shows up as an error class
    assert re.search(r"answered [\d,]+ requests", result.stdout)
    assert "app-info" in result.stderr  # the progress bar


def test_fake_server_writes_its_authorizers(tmp_path: Path) -> None:
    path = tmp_path / "fake.jsonl"
    result = CliRunner().invoke(
        cli,
        ["fake-server", "--authorizers", "3", "--authorizers-file", str(path), "--duration", "0.1"],
    )
    assert result.exit_code == 0, result.output
    lines = parse_lines(path.read_text(encoding="utf-8"))
    assert [set(line) for line in lines] == [{"app_id", "access_token"}] * 3
    assert re.search(r"serving on http://127\.0\.0\.1:\d+", result.stderr)
    assert "component app id: ks_component_fake" in result.stderr
    assert "stopped" in result.stderr


def test_fake_server_unwritable_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir.jsonl"
    result = CliRunner().invoke(cli, ["fake-server", "--authorizers-file", str(path)])
    assert result.exit_code == 2
    assert "cannot write" in result.stderr


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@unix_only
def test_fake_server_process_serves_until_ctrl_c(tmp_path: Path) -> None:
    path = tmp_path / "fake.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kuaishou_mp",
            "fake-server",
            "--authorizers",
            "4",
            "--authorizers-file",
            str(path),
            "--component-app-id",
            "ks_proc",
        ],
        stderr=subprocess.PIPE,
        text=True,
        # A job started in the background inherits SIGINT ignored, and a Python started so
        # never raises KeyboardInterrupt; the server gets Ctrl-C as a terminal would give it.
        preexec_fn=_default_sigint,
    )
    try:
        assert proc.stderr is not None
        base_url = None
        for _ in range(20):
            line = proc.stderr.readline()
            found = re.search(r"http://127\.0\.0\.1:\d+", line)
            if found:
                base_url = found.group(0)
                break
        assert base_url is not None, "fake-server printed no base URL"
        result = CliRunner().invoke(
            cli,
            [
                "app-info",
                "--authorizers",
                str(path),
                "--base-url",
                base_url,
                "--component-app-id",
                "ks_proc",
            ],
        )
        assert result.exit_code == 0, result.stderr
        assert len(parse_lines(result.stdout)) == 4
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@unix_only
@pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs Python's default Ctrl-C handling",
)
def test_ctrl_c_flushes_completed_lines_and_resume_finishes(
    server: FakeThread, tmp_path: Path
) -> None:
    apps = server.add(12)

    # The first 4 answer at once; the rest hang, so the run is certainly inside its event loop
    # (waiting) when Ctrl-C arrives.
    def hang_the_rest() -> None:
        for app in apps[4:]:
            server.fake.inject(app.app_id, Fault.hang(15))

    server.call(hang_the_rest)
    authorizers = str(write_jsonl(tmp_path / "a.jsonl", apps))
    out = tmp_path / "out.jsonl"
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def interrupt_when_stuck() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if server.call(lambda: server.fake.counters["hang"]) >= 4:
                # At the main thread: that is where the event loop waits in select().
                signal.pthread_kill(main_thread, signal.SIGINT)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=interrupt_when_stuck)
    watcher.start()
    try:
        result = invoke(
            server,
            "app-info",
            "--authorizers",
            authorizers,
            "-o",
            str(out),
            "--concurrency",
            "4",
            "--timeout",
            "30",
            files=(out,),
        )
    finally:
        watcher.join()
    assert result.exit_code == 130
    assert "interrupted; rerun with --resume" in result.stderr
    done = parse_lines(out.read_text(encoding="utf-8"))
    assert sorted(line["app_id"] for line in done) == sorted(a.app_id for a in apps[:4])

    def clear() -> None:
        for app in apps:
            server.fake.clear_faults(app.app_id)

    server.call(clear)
    resumed = invoke(
        server, "app-info", "--authorizers", authorizers, "-o", str(out), "--resume", files=(out,)
    )
    assert resumed.exit_code == 0
    lines = parse_lines(out.read_text(encoding="utf-8"))
    assert sorted(line["app_id"] for line in lines) == sorted(a.app_id for a in apps)


def test_verbose_logs_retries_to_stderr(server: FakeThread, tmp_path: Path) -> None:
    (app,) = server.add(1)
    server.call(lambda: server.fake.inject(app.app_id, Fault.result(100200500)))
    authorizers = str(write_jsonl(tmp_path / "a.jsonl", [app]))
    result = invoke(server, "-vv", "app-info", "--authorizers", authorizers, "--progress")
    assert result.exit_code == 0
    assert "retrying app_info" in result.stderr
    assert "1 retries" in result.stderr
    assert parse_lines(result.stdout)[0]["ok"] is True


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kuaishou_mp", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    assert proc.returncode == 0
    assert "kuaishou-mp" in proc.stdout
