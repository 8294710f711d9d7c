"""Secrets canary across every path: a planted token appears nowhere, in any spelling.

The canary (``hardening_support.CANARY``) contains ``+``, ``/`` and ``=``, so it travels
percent-encoded in the query string, and a JSON body may escape its ``/``. The fake is told to
echo it back in every way a platform, a gateway or a proxy could: in ``error_msg``, in HTML
error pages, percent-encoded, JSON-escaped, at the edge of the excerpt window. Then nothing
that leaves the SDK may hold it, whole or in part (any 8 characters of any spelling):
exception messages, reprs, attributes, chains, formatted tracebacks and pickles; log records at
DEBUG (ours, aiohttp's, asyncio's); bulk results, progress and summaries; ``with_options``
copies; token-provider paths; every hook event, OpenTelemetry span (attributes, events, status)
and metric point, and the log records' structured fields; and the command line's output file,
stdout and stderr at ``-vv``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import pickle
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
import pytest
from click.testing import CliRunner
from hardening_support import CANARY, FakeThread, exception_text, leaks
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kuaishou_mp import (
    AuthError,
    Authorizer,
    Client,
    DomainNotFoundError,
    Hooks,
    InMemoryTokenProvider,
    InvalidInputError,
    InvalidPushError,
    KuaishouError,
    RetryPolicy,
    ServerDomains,
    Timeout,
    TokenExpiredError,
    TokenUnavailableError,
    WebviewDomains,
)
from kuaishou_mp.auth import AuthClient, InMemoryTokenStorage, TokenManager
from kuaishou_mp.cli._app import cli
from kuaishou_mp.events import ComponentTicket, PushEvent, PushReceiver, decrypt_message
from kuaishou_mp.otel import OpenTelemetryHooks
from kuaishou_mp.testing import FakeKuaishou, Fault

if TYPE_CHECKING:
    from conftest import ClientOptions, MakeClient
    from typing_extensions import Unpack

ENCODED = quote(CANARY, safe="")
APP = "ks_canary"
ECHOING = f"{CANARY}echo"


def lower_escapes(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def echo_faults(token: str = CANARY) -> dict[str, Fault]:
    """Every way the answer can carry ``token`` back (or fail without it)."""
    encoded = quote(token, safe="")
    escaped = token.replace("/", "\\/")  # as a JSON encoder that escapes "/" writes it
    return {
        "api error echo": Fault.result(100200102, f"token {token} refused"),
        "api error echo encoded": Fault.result(100200500, f"bad token {encoded}"),
        "api error echo escaped": Fault.raw(
            b'{"result": 400003, "error_msg": "token ' + escaped.encode() + b'"}'
        ),
        "api error echo lower-case escapes": Fault.result(100200500, lower_escapes(encoded)),
        "http 500 echo": Fault.http(500, body=f"<p>token={token}</p>"),
        "http 502 echo encoded": Fault.http(502, body=f"<p>upstream {encoded}</p>"),
        "http 500 JSON echo escaped": Fault.http(
            500, body=b'{"error": "' + escaped.encode() + b'"}', content_type="application/json"
        ),
        "html 200 echo": Fault.raw(f"<html>{token}</html>".encode(), content_type="text/html"),
        "echo at the excerpt edge": Fault.raw(
            b" " * 1270 + token.encode() + b" and more", content_type="text/html"
        ),
        "echo past many spaces": Fault.http(503, body=" " * 5000 + encoded),
        "wrong shape holding it": Fault.raw(
            json.dumps(
                {"result": 1, "app_category": token, "request": token, "webview": [[token]]}
            ).encode()
        ),
        "malformed": Fault.malformed(),
        "timeout": Fault.hang(10),
        "dropped": Fault.drop(),
        "huge": Fault.huge(2_000_000),
        "endless": Fault.endless(),
    }


def check_exception(exc: BaseException) -> None:
    assert leaks(exception_text(exc)) == []
    assert leaks(repr(pickle.loads(pickle.dumps(exc)).__dict__)) == []
    assert CANARY.encode() not in pickle.dumps(exc)


def check_logs(records: list[logging.LogRecord]) -> None:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        text = f"{formatter.format(record)}\n{record.__dict__!r}"
        assert leaks(text) == [], record.getMessage()


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG: ours, aiohttp's, asyncio's."""
    with caplog.at_level(logging.DEBUG):
        yield caplog
    check_logs(caplog.records)


def canary_options(**overrides: Unpack[ClientOptions]) -> ClientOptions:
    """This file's options for ``make_client``, which ``overrides`` replace."""
    defaults: ClientOptions = {
        "timeout": Timeout(total=0.3),
        "retry": RetryPolicy(max_attempts=2, backoff_base=0.001),
        "max_response_bytes": 64 * 1024,
    }
    options: ClientOptions = {**defaults, **overrides}
    return options


Call = Callable[[Client, Authorizer], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "app_info": lambda c, a: c.app_info(a),
    "server_domain get": lambda c, a: c.server_domain(a, "get"),
    "webview_domain delete": lambda c, a: c.webview_domain(a, "delete", webview=["gone.com"]),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("fault", list(echo_faults()))
async def test_every_failure_of_every_endpoint(
    fault: str,
    call: str,
    kuaishou_fake: FakeKuaishou,
    all_logs: pytest.LogCaptureFixture,
    make_client: MakeClient,
) -> None:
    kuaishou_fake.add_authorizer(APP, CANARY)
    kuaishou_fake.inject(APP, *([echo_faults()[fault]] * 4))
    async with make_client(kuaishou_fake, **canary_options()) as client:
        copy = client.with_options(timeout=0.3)
        with pytest.raises(KuaishouError) as info:
            await CALLS[call](copy, Authorizer(APP, CANARY))
        assert leaks(repr(copy)) == []
        assert leaks(repr(vars(copy))) == []
    check_exception(info.value)


class _Records(Hooks):
    """Hooks keeping every event they are given, as text (every field, nested ones too)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.kinds: list[str] = []

    def _keep(self, event: Any) -> None:
        self.kinds.append(type(event).__name__)
        self.texts.append(repr(event) + repr(attrs.asdict(event)))

    on_attempt_start = on_attempt_end = on_retry = on_throttle = _keep
    on_circuit_change = on_call_end = on_bulk_progress = _keep


@pytest.mark.parametrize("fault", list(echo_faults()))
async def test_attempt_hooks_see_no_secret(
    fault: str, kuaishou_fake: FakeKuaishou, make_client: MakeClient
) -> None:
    kuaishou_fake.add_authorizer(APP, CANARY)
    kuaishou_fake.inject(APP, *([echo_faults()[fault]] * 4))
    hooks = _Records()
    async with make_client(kuaishou_fake, **canary_options(hooks=[hooks])) as client:
        with pytest.raises(KuaishouError):
            await client.app_info(Authorizer(APP, CANARY))
    starts = hooks.kinds.count("AttemptStart")
    assert starts == hooks.kinds.count("AttemptEnd") >= 1  # every attempt started and ended
    assert hooks.kinds.count("RetryEvent") == starts - 1
    assert hooks.kinds[-1] == "CallEnd"
    assert leaks("\n".join(hooks.texts)) == []


class _Telemetry:
    """OpenTelemetryHooks on an SDK that keeps every span and metric in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.hooks = OpenTelemetryHooks(self.tracer_provider, self.meter_provider)

    def text(self) -> str:
        """Every span (name, attributes, events, status) and every metric point, as JSON."""
        spans = self.exporter.get_finished_spans()
        assert spans
        data = self.reader.get_metrics_data()
        assert data is not None
        texts = [span.to_json() for span in spans]
        for span in spans:
            texts += [repr(dict(span.attributes or {})), repr(span.events), repr(span.status)]
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        return "\n".join([*texts, data.to_json()])


def check_structured_fields(records: list[logging.LogRecord]) -> None:
    """The per-call records carry their ``extra=`` fields (check_logs then reads them too)."""
    fielded = [r for r in records if hasattr(r, "kuaishou_endpoint")]
    assert fielded
    assert any(hasattr(r, "kuaishou_result_code") for r in fielded)


@pytest.mark.parametrize("fault", list(echo_faults()))
async def test_telemetry_and_log_fields_hold_no_secret(
    fault: str,
    kuaishou_fake: FakeKuaishou,
    all_logs: pytest.LogCaptureFixture,
    make_client: MakeClient,
) -> None:
    """Every hook event, span attribute, span event, metric attribute and log record."""
    kuaishou_fake.add_authorizer(APP, CANARY)
    telemetry, hooks = _Telemetry(), _Records()
    # No limiter: the per-authorizer one would make the bulk run wait out the throttling.
    options: dict[str, Any] = {"hooks": [hooks, telemetry.hooks], "rate_limit": None}
    async with make_client(kuaishou_fake, **canary_options(**options)) as client:
        for call in CALLS.values():
            kuaishou_fake.inject(APP, *([echo_faults()[fault]] * 2), Fault.result(400002))
            with contextlib.suppress(KuaishouError):
                await call(client, Authorizer(APP, CANARY))
        kuaishou_fake.inject(APP, echo_faults()[fault])
        async with client.bulk_app_info([Authorizer(APP, CANARY)] * 3, concurrency=2) as run:
            async for _ in run:
                pass
    assert {"AttemptStart", "AttemptEnd", "RetryEvent", "ThrottleEvent"} <= set(hooks.kinds)
    assert "BulkProgressEvent" in hooks.kinds
    assert leaks("\n".join(hooks.texts)) == []
    text = telemetry.text()
    assert "authorizer_access_token=REDACTED" in text  # the URLs were exported, redacted
    assert leaks(text) == []
    check_structured_fields(all_logs.records)


async def test_auth_client_telemetry_holds_no_secret(
    kuaishou_fake: FakeKuaishou, all_logs: pytest.LogCaptureFixture
) -> None:
    """The component's own calls: the secret, tickets, codes and tokens are in their URLs."""
    telemetry, hooks = _Telemetry(), _Records()
    kuaishou_fake.inject(None, Fault.result(100200500, f"bad {CANARY}"), Fault.http(503))
    async with AuthClient(
        kuaishou_fake.component_app_id,
        CANARY,
        base_url=kuaishou_fake.base_url,
        retry=RetryPolicy(max_attempts=2, backoff_base=0.001),
        hooks=[hooks, telemetry.hooks],
    ) as auth:
        calls = [
            auth.start_push_ticket(),
            auth.component_access_token(CANARY),
            auth.pre_auth_code(CANARY),
            auth.authorizer_tokens(CANARY, ECHOING, authorized_app_id=APP),
            auth.recover_authorization_code(CANARY, APP),
        ]
        for call in calls:
            with pytest.raises(KuaishouError):
                await call
    assert hooks.kinds.count("CallEnd") == len(calls)
    assert leaks("\n".join(hooks.texts)) == []
    text = telemetry.text()
    assert "REDACTED" in text
    assert leaks(text) == []
    check_structured_fields(all_logs.records)


async def test_connection_refused_and_closed_client(all_logs: pytest.LogCaptureFixture) -> None:
    client = Client("c", base_url="http://127.0.0.1:9", retry=RetryPolicy(backoff_base=0.001))
    async with client:
        with pytest.raises(KuaishouError) as refused:
            await client.server_domain(Authorizer(APP, CANARY), "set", request=["a.com"])
    with pytest.raises(KuaishouError) as closed:
        await client.app_info(Authorizer(APP, CANARY))
    check_exception(refused.value)
    check_exception(closed.value)


async def test_the_ambiguous_delete_confirmation(
    kuaishou_fake: FakeKuaishou, all_logs: pytest.LogCaptureFixture, make_client: MakeClient
) -> None:
    """A delete retried after a lost answer, confirmed by a get: logged, never with the token."""
    kuaishou_fake.add_authorizer(APP, CANARY, webview_domains=["a.com", "b.com"])
    kuaishou_fake.inject(APP, Fault.drop_after_applying())
    async with make_client(
        kuaishou_fake, **canary_options(retry=RetryPolicy(backoff_base=0.001))
    ) as client:
        after = await client.webview_domain(Authorizer(APP, CANARY), "delete", webview=["a.com"])
        assert after.webview == ("b.com",)
        kuaishou_fake.inject(APP, Fault.drop_after_applying())
        with pytest.raises(DomainNotFoundError) as info:
            # b.com goes on the first try; the retry's 403106 for a.com stands after the get.
            await client.webview_domain(
                Authorizer(APP, CANARY), "delete", webview=["a.com", "b.com"]
            )
    check_exception(info.value)
    assert any("confirmed" in r.getMessage() for r in all_logs.records)


async def test_token_provider_paths(
    kuaishou_fake: FakeKuaishou, all_logs: pytest.LogCaptureFixture, make_client: MakeClient
) -> None:
    kuaishou_fake.add_authorizer(APP, CANARY)
    kuaishou_fake.add_authorizer("ks_missing")
    kuaishou_fake.expire_token(APP)  # the refresh hands back the same dead token
    refreshed: list[str] = []

    async def refresh(app_id: str) -> str:
        refreshed.append(app_id)
        if app_id == "ks_missing":
            raise TokenUnavailableError("no token for this app id", app_id=app_id)
        return CANARY

    provider = InMemoryTokenProvider({APP: CANARY}, refresh=refresh)
    assert leaks(repr(provider)) == []
    async with make_client(kuaishou_fake, **canary_options(token_provider=provider)) as client:
        for copy in (client, client.with_options(retry=RetryPolicy.none())):
            with pytest.raises(TokenExpiredError) as expired:
                await copy.app_info(APP)
            check_exception(expired.value)
            with pytest.raises(TokenUnavailableError) as missing:
                await copy.server_domain("ks_missing", "get")
            check_exception(missing.value)
            assert leaks(repr(vars(copy))) == []
        kuaishou_fake.rotate_token(APP, "fresh_token_0001")
        kuaishou_fake.revoke_token(APP)
        with pytest.raises(AuthError) as revoked:
            await client.app_info(Authorizer(APP, CANARY))
        check_exception(revoked.value)
    assert refreshed.count(APP) == 2


async def test_bulk_results_progress_and_summaries(
    kuaishou_fake: FakeKuaishou, all_logs: pytest.LogCaptureFixture, make_client: MakeClient
) -> None:
    authorizers = []
    for i in range(len(echo_faults())):
        app_id = f"ks_canary_{i:02d}"
        token = f"{CANARY}{i:02d}"  # each a canary, echoed whole
        fault = list(echo_faults(token).values())[i]
        kuaishou_fake.add_authorizer(app_id, token)
        kuaishou_fake.inject(app_id, fault, fault)
        authorizers.append(Authorizer(app_id, token))
    async with make_client(kuaishou_fake, **canary_options()) as client:
        texts: list[str] = []
        # The faults open the outage circuit: each run waits it out for a second, then the
        # rest fails fast, so both paths' texts are read (and the test takes seconds, not 20).
        wait = 1.0
        runs: list[Any] = [
            client.bulk_app_info(authorizers, concurrency=8, max_outage=wait),
            client.with_options(timeout=0.3).bulk_server_domain(
                authorizers, "get", max_outage=wait
            ),
            client.bulk_reconcile_webview_domains(
                authorizers, WebviewDomains(webview=("new.example.com",)), "ensure", max_outage=wait
            ),
            client.bulk_reconcile_server_domains(
                authorizers,
                ServerDomains(request=("api.example.com",)),
                "exact",
                dry_run=True,
                max_outage=wait,
            ),
        ]
        for run in runs:
            async with run:
                async for result in run:
                    texts += [repr(result.value), repr(run), repr(run.progress)]
                    if result.error is not None:
                        texts.append(exception_text(result.error))
                    texts.append(repr(result).replace(repr(result.authorizer), "<authorizer>"))
            summary = run.summary()
            texts += [str(summary), repr(summary)]
            assert summary.total == len(authorizers)
    assert leaks("\n".join(texts)) == []


# -- pushed messages ----------------------------------------------------------------------------


async def test_push_paths(kuaishou_fake: FakeKuaishou, all_logs: pytest.LogCaptureFixture) -> None:
    """The canary as the verification token, the ticket, a code and in the application's error."""
    push = kuaishou_fake.push
    push.verification_token = CANARY
    cid = kuaishou_fake.component_app_id
    key = push.encryption_key
    texts: list[str] = []

    class LeakyStorage(InMemoryTokenStorage):
        async def save_ticket(self, cid: str, ticket: str, event_time: int | None = None) -> bool:
            if ticket.endswith("fail"):
                raise OSError(f"cannot write {ticket}")
            return await super().save_ticket(cid, ticket, event_time)

    def on_event(event: ComponentTicket | PushEvent) -> None:
        texts.append(repr(event))
        if event.event == "EXPLODE":
            raise RuntimeError(f"application failed holding {CANARY}")

    manager = TokenManager(AuthClient(cid, CANARY), storage=LeakyStorage())
    receiver = PushReceiver(cid, CANARY, key, token_manager=manager, on_event=on_event)
    texts.append(repr(receiver))
    ticket = {"componentTicket": CANARY, "eventTime": 1, "expiresIn": 2400}
    messages: list[tuple[dict[str, Any], int]] = [
        ({"event": "COMPONENT_TICKET", "componentAppId": cid, **ticket}, 200),
        ({"event": "COMPONENT_TICKET", **ticket, "componentTicket": CANARY + "fail"}, 500),
        ({"event": "AUTHORIZED", "authorizationCode": CANARY, "x": {"token": CANARY}}, 200),
        ({"event": "EXPLODE", "authorizationCode": CANARY}, 500),
        ({"event": "COMPONENT_TICKET", "componentAppId": "other", **ticket}, 403),
        ({"event": "COMPONENT_TICKET", "componentTicket": CANARY}, 400),  # fields missing
    ]
    async with manager:
        for i, (message, status) in enumerate(messages):
            body = push.envelope(message, f"m{i}")
            answer = await receiver.handle(body, {"kwaisign": push.sign(body)})
            assert answer.status == status, answer.body
            texts += [answer.body.decode(), repr(answer)]
        body = push.envelope(messages[0][0], "wrong-sig")
        texts.append((await receiver.handle(body, {"kwaisign": CANARY})).body.decode())
        push.encryption_key = base64.b64encode(b"k" * 32).decode()  # another key: undecryptable
        body = push.envelope(messages[0][0], "wrong-key")
        wrong_key = await receiver.handle(body, {"kwaisign": push.sign(body)})
        assert wrong_key.status == 400
        texts.append(wrong_key.body.decode())
        assert await manager.storage.load_ticket(cid) == CANARY  # the success did apply
    not_json = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(InvalidPushError) as undecryptable:
        decrypt_message(not_json, key)
    check_exception(undecryptable.value)
    with pytest.raises(InvalidInputError) as bad_key:
        PushReceiver(cid, CANARY, CANARY)
    check_exception(bad_key.value)
    texts += [repr(push), repr(push.deliveries), repr(push.counters)]
    text = "\n".join(texts) + "\n".join(r.getMessage() for r in all_logs.records)
    assert leaks(text) == []
    assert key not in text
    assert all(key[i : i + 8] not in text for i in range(len(key) - 7))


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeThread]:
    fake = FakeThread()
    try:
        yield fake
    finally:
        fake.close()


def test_the_command_line_at_debug(server: FakeThread, tmp_path: Path) -> None:
    def prepare() -> list[dict[str, str]]:
        rows = []
        for i in range(len(echo_faults())):
            app_id = f"ks_canary_{i:02d}"
            token = f"{CANARY}{i:02d}"
            server.fake.add_authorizer(app_id, token)
            rows.append({"app_id": app_id, "access_token": token})
        server.fake.add_authorizer("ks_echoing", ECHOING)
        rows.append({"app_id": "ks_echoing", "access_token": ECHOING})
        server.fake.add_authorizer("ks_revoked", CANARY)
        server.fake.revoke_token("ks_revoked")
        rows.append({"app_id": "ks_revoked", "access_token": CANARY})
        return rows

    def replant() -> None:
        for i, row in enumerate(rows[:-2]):
            server.fake.inject(row["app_id"], list(echo_faults(row["access_token"]).values())[i])
        # Echoes on every attempt, so the final error (and the output line) carries one.
        echo = Fault.result(100200500, f"bad token {quote(ECHOING, safe='')}")
        server.fake.inject("ks_echoing", *([echo] * 4))

    rows = server.call(prepare)
    authorizers = tmp_path / "authorizers.jsonl"
    authorizers.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    env = {
        "KUAISHOU_COMPONENT_APP_ID": server.fake.component_app_id,
        "KUAISHOU_BASE_URL": server.base_url,
    }
    commands = [
        ["app-info"],
        ["server-domain", "get"],
        ["webview-domain", "add", "--webview", "new.example.com"],
        ["reconcile", "server", "--mode", "ensure", "--request", "api.example.com"],
    ]
    for i, command in enumerate(commands):
        out = tmp_path / f"out{i}.jsonl"
        server.call(replant)  # each command consumes them
        result = CliRunner().invoke(
            cli,
            [
                "-vv",
                *command,
                "--authorizers",
                str(authorizers),
                "-o",
                str(out),
                "--timeout",
                "0.5",
                "--progress",
            ],
            env=env,
            catch_exceptions=False,
        )
        assert result.exit_code == 1, result.stderr  # the revoked token fails
        written = out.read_text(encoding="utf-8")
        assert len(written.splitlines()) == len(rows)
        assert "AuthError" in written
        assert "ServerError" in written  # the echoing authorizer's
        assert "DEBUG" in result.stderr or "app_id=" in result.stderr  # -vv did log
        for text in (result.stdout, result.stderr, written):
            assert leaks(text) == [], command


def test_the_command_line_with_stdout_output(server: FakeThread, tmp_path: Path) -> None:
    server.call(lambda: server.fake.add_authorizer(APP, CANARY))
    server.call(lambda: server.fake.inject(APP, Fault.result(100200102, f"bad {CANARY}")))
    authorizers = tmp_path / "a.jsonl"
    authorizers.write_text(json.dumps({"app_id": APP, "access_token": CANARY}) + "\n")
    result = CliRunner().invoke(
        cli,
        ["-vv", "app-info", "--authorizers", str(authorizers)],
        env={
            "KUAISHOU_COMPONENT_APP_ID": server.fake.component_app_id,
            "KUAISHOU_BASE_URL": server.base_url,
        },
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["type"] == "AuthError"
    assert leaks(result.stdout + result.stderr) == []


async def test_loop_stays_quiet() -> None:
    """Sanity for the helpers above: the canary check itself catches a leak."""
    assert leaks(f"x {CANARY[3:15]} y") != []
    assert leaks(f"x {ENCODED} y") != []
    assert leaks("nothing here") == []
    await asyncio.sleep(0)
