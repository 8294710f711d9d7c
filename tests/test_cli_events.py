"""The whole chain from a shell: serve-events keeps the pushed ticket in Redis, and the batch
commands take tokens from it by bare app id, renewing them as needed."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import hardening_support
import pytest
import redis
from click.testing import CliRunner, Result
from redis_support import free_port

from kuaishou_mp.cli._app import cli
from kuaishou_mp.cli._io import InputFileError, parse_app_ids

SECRET = "CLI-secret-canary-91f"


class Chain:
    """A fake platform in a thread, whose pushes go to a serve-events process."""

    def __init__(self, redis_url: str) -> None:
        self.cid = f"ks_cli_{uuid.uuid4().hex[:10]}"
        self.server = hardening_support.FakeThread(component_app_id=self.cid)
        self.fake = self.server.fake
        self.server.call(lambda: setattr(self.fake.oauth, "component_app_secret", SECRET))
        self.redis_url = redis_url
        self.port = free_port()
        self.fake.push.url = f"http://127.0.0.1:{self.port}/kuaishou/push"
        self.fake.push.retry_delay = 0.05
        self.env = {
            "KUAISHOU_COMPONENT_APP_ID": self.cid,
            "KUAISHOU_COMPONENT_APP_SECRET": SECRET,
            "KUAISHOU_VERIFICATION_TOKEN": self.fake.push.verification_token,
            "KUAISHOU_ENCRYPTION_KEY": self.fake.push.encryption_key,
            "KUAISHOU_BASE_URL": self.server.base_url,
            "KUAISHOU_TOKEN_STORE": redis_url,
        }

    def secrets(self) -> list[str]:
        tokens = self.server.call(lambda: [a.access_token for a in self.fake.authorizers.values()])
        ticket = self.server.call(lambda: self.fake.oauth.ticket)
        found = [SECRET, self.fake.push.verification_token, self.fake.push.encryption_key, *tokens]
        return [*found, ticket] if ticket else found

    def ticket_key(self) -> str:
        return f"kuaishou_mp:{self.cid}:component:ticket"

    def close(self) -> None:
        self.server.close()
        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = list(client.scan_iter(match=f"kuaishou_mp:{self.cid}:*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture
def chain(redis_url: str) -> Iterator[Chain]:
    c = Chain(redis_url)
    try:
        yield c
    finally:
        c.close()


def run(chain: Chain, *args: str, env: dict[str, str | None] | None = None) -> Result:
    result = CliRunner().invoke(
        cli, list(args), env={**chain.env, **(env or {})}, catch_exceptions=False
    )
    for secret in chain.secrets():
        assert secret not in result.stdout
        assert secret not in result.stderr
    return result


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.redis
@pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")
def test_the_whole_chain_from_a_shell(chain: Chain, tmp_path: Path) -> None:
    apps = chain.server.call(lambda: chain.fake.add_authorizers(5))
    app_ids = [a.app_id for a in apps]
    # serve-events in its own process: the fake pushes the ticket to it, it stores it in Redis.
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kuaishou_mp", "serve-events"),
            *("--port", str(chain.port), "--start-push-ticket", "--duration", "60"),
        ],
        env={**os.environ, **chain.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        store = redis.Redis.from_url(chain.redis_url)
        deadline = time.monotonic() + 30
        while not store.exists(chain.ticket_key()) and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        stored = store.hget(chain.ticket_key(), "v")
        store.close()
        assert isinstance(stored, bytes)
        assert stored.decode() == chain.server.call(lambda: chain.fake.oauth.ticket)
        # The ticket is stored before serve-events answers the push; the fake counts the
        # acknowledgement once that answer reaches it.
        while chain.fake.push.counters["acknowledged"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert chain.fake.push.counters["acknowledged"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Receiving pushes on http://127.0.0.1:" in err
    assert "push COMPONENT_TICKET msg_id=" in err
    assert "stopped" in err
    for secret in chain.secrets():
        assert secret not in out
        assert secret not in err

    # The batch commands: bare app ids, in each of the three formats, tokens from the store.
    files = {
        "ids.txt": "\n".join(app_ids) + "\n",
        "ids.csv": "name,app_id\n" + "".join(f"x,{a}\n" for a in app_ids),
        "ids.jsonl": "".join(json.dumps({"app_id": a}) + "\n" for a in app_ids),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    first = run(chain, "app-info", "--authorizers", str(tmp_path / "ids.txt"), "--progress")
    assert first.exit_code == 0, first.output
    assert [line["ok"] for line in lines(first.stdout)] == [True] * 5
    assert "tokens from redis://" in first.stderr
    exchanges = chain.server.call(lambda: dict(chain.fake.oauth.exchanges))
    assert exchanges == dict.fromkeys(app_ids, 1)  # obtained once each, stored in Redis

    # A second run reuses the stored tokens; two that expired are renewed on the way.
    def expire_two() -> None:
        for app_id in app_ids[:2]:
            chain.fake.expire_token(app_id)

    chain.server.call(expire_two)
    second = run(chain, "webview-domain", "get", "--authorizers", str(tmp_path / "ids.csv"))
    assert second.exit_code == 0, second.output
    assert len(lines(second.stdout)) == 5
    exchanges = chain.server.call(lambda: dict(chain.fake.oauth.exchanges))
    assert exchanges == {a: 2 if a in app_ids[:2] else 1 for a in app_ids}
    third = run(chain, "app-info", "--authorizers", str(tmp_path / "ids.jsonl"))
    assert third.exit_code == 0, third.output
    assert chain.fake.oauth.component_tokens_issued == 1


@pytest.mark.redis
def test_serve_events_refuses_bad_secrets_without_echoing_them(chain: Chain) -> None:
    result = run(
        chain, "serve-events", "--port", "0", env={"KUAISHOU_ENCRYPTION_KEY": "bad key SECRET!"}
    )
    assert result.exit_code == 2
    assert "encryption_key" in result.stderr
    assert "bad key SECRET!" not in result.stderr
    missing = run(chain, "serve-events", "--port", "0", env={"KUAISHOU_VERIFICATION_TOKEN": None})
    assert missing.exit_code == 2
    assert "--verification-token" in missing.stderr


def test_a_token_store_needs_a_redis_url_and_a_secret(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("ks1\n", encoding="utf-8")
    env = {"KUAISHOU_COMPONENT_APP_ID": "ks_c", "KUAISHOU_COMPONENT_APP_SECRET": SECRET}
    runner = CliRunner()
    bad = runner.invoke(
        cli,
        ["app-info", "--authorizers", str(ids), "--token-store", "http://u:pw-SECRET@h/0"],
        env=env,
    )
    assert bad.exit_code == 2
    assert "redis://" in bad.stderr
    assert "pw-SECRET" not in bad.stderr
    assert "u:***@h" in bad.stderr
    no_secret = runner.invoke(
        cli,
        ["app-info", "--authorizers", str(ids), "--token-store", "redis://127.0.0.1:1/0"],
        env={**env, "KUAISHOU_COMPONENT_APP_SECRET": None},
    )
    assert no_secret.exit_code == 2
    assert "--component-app-secret" in no_secret.stderr


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("ks1\nks2\n\n ks3 \n", ["ks1", "ks2", "ks3"]),
        ("app_id\nks1\nks2\n", ["ks1", "ks2"]),
        ("app_id,access_token\nks1,t1\nks2,t2\n", ["ks1", "ks2"]),
        ("\ufeffname,APP_ID\nx,ks1\n", ["ks1"]),
        ('{"app_id": "ks1"}\n{"app_id": "ks2", "access_token": "t"}\n', ["ks1", "ks2"]),
    ],
)
def test_app_id_files(text: str, ids: list[str]) -> None:
    assert parse_app_ids(text.encode("utf-8"), "f") == ids


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "line 1: the file is empty"),
        ("ks1\nks2\nks1\n", "line 3: duplicate app_id 'ks1' (first on line 1)"),
        ("ks 1\n", "line 1: app_id contains whitespace"),
        ("name,other\nx,y\n", "line 1: the CSV header has no app_id column"),
        ('{"app": "ks1"}\n', "line 1: missing field 'app_id'"),
        ('{"app_id": 5}\n', "line 1: field 'app_id' must be a string"),
        ("app_id\n", "no app ids after the header row"),
    ],
)
def test_bad_app_id_files(text: str, problem: str) -> None:
    with pytest.raises(InputFileError) as info:
        parse_app_ids(text.encode("utf-8"), "f")
    assert problem in str(info.value)


def test_the_demo_runs_the_push_chain() -> None:
    result = CliRunner().invoke(cli, ["demo", "--authorizers", "100", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "it pushes to the SDK's receiver on http://127.0.0.1:" in result.stdout
    match = re.search(
        r"Tokens: the platform pushed (\d+) signed, encrypted ticket\(s\) to the SDK's receiver; "
        r"the TokenManager got (\d+) component token\(s\) from it, then ([\d,]+) authorizer "
        r"tokens by bare app id, and renewed ([\d,]+) that expired on the way\.",
        result.stdout,
    )
    assert match is not None, result.stdout
    pushed, component, obtained, renewed = (int(g.replace(",", "")) for g in match.groups())
    assert (pushed, component, obtained) == (1, 1, 100)
    assert renewed == 2  # the demo expires 2 % of the tokens between its two runs
    assert "AuthError" in result.stdout  # the revoked tokens, which no renewal fixes


@pytest.mark.redis
def test_serve_events_in_process_at_debug(chain: Chain) -> None:
    """The same receiver, run in-process for a fixed time, with -vv logging: no secret shows,
    not even 8 characters of the canary verification token."""
    chain.fake.push.verification_token = hardening_support.CANARY
    chain.env["KUAISHOU_VERIFICATION_TOKEN"] = hardening_support.CANARY
    result = run(
        chain,
        "-vv",
        "serve-events",
        "--port",
        str(chain.port),
        "--start-push-ticket",
        "--duration",
        "1.5",
    )
    assert result.exit_code == 0, result.output
    assert "start_push_ticket: the platform will push tickets" in result.stderr
    assert "push COMPONENT_TICKET msg_id=" in result.stderr
    assert hardening_support.leaks(result.stdout + result.stderr) == []
    store = redis.Redis.from_url(chain.redis_url)
    try:
        assert store.hget(chain.ticket_key(), "v") is not None
    finally:
        store.close()
    taken = run(chain, "serve-events", "--port", str(chain.port), "--duration", "0.1")
    assert taken.exit_code == 0  # the port is free again after the first run stopped
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        in_use = run(chain, "serve-events", "--port", port, "--duration", "0.1")
    assert in_use.exit_code == 2
    assert "cannot listen on 127.0.0.1:" in in_use.stderr
    bad = run(chain, "serve-events", "--port", "0", env={"KUAISHOU_TOKEN_STORE": "memory://"})
    assert bad.exit_code == 2
    assert "--token-store must be a redis://" in bad.stderr
