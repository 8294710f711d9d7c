"""Hooks, the dispatcher that calls them, URL redaction and the library logger's set-up."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap

import attrs
import pytest
from hardening_support import CANARY, leaks
from yarl import URL

import kuaishou_mp
from kuaishou_mp import (
    AttemptEnd,
    AttemptStart,
    BulkProgressEvent,
    CallEnd,
    CircuitChange,
    Hooks,
    InvalidInputError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseValidationError,
    RetryEvent,
    ServerError,
    ThrottleEvent,
    TokenExpiredError,
    TransportError,
)
from kuaishou_mp._hookset import HookSet, outcome_of
from kuaishou_mp._logging import log_fields, setup_logging
from kuaishou_mp._scrub import redact_url

BASE = "https://open.kuaishou.com/openapi/mp/auth/app/info"


class Recorder(Hooks):
    """Records every event it is given, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_attempt_start(self, event: AttemptStart) -> None:
        self.events.append(("start", event))

    def on_attempt_end(self, event: AttemptEnd) -> None:
        self.events.append(("end", event))

    def on_retry(self, event: RetryEvent) -> None:
        self.events.append(("retry", event))

    def on_throttle(self, event: ThrottleEvent) -> None:
        self.events.append(("throttle", event))

    def on_circuit_change(self, event: CircuitChange) -> None:
        self.events.append(("circuit", event))

    def on_call_end(self, event: CallEnd) -> None:
        self.events.append(("call", event))

    def on_bulk_progress(self, event: BulkProgressEvent) -> None:
        self.events.append(("bulk", event))


class Broken(Hooks):
    def __init__(self) -> None:
        self.calls = 0

    def on_attempt_start(self, event: AttemptStart) -> None:
        self.calls += 1
        raise RuntimeError("hook bug")

    def on_retry(self, event: RetryEvent) -> None:
        self.calls += 1
        raise ValueError("another hook bug")


def start(hooks: HookSet, attempt: int = 1, app_id: str = "ks_a") -> AttemptStart | None:
    return hooks.attempt_start(
        endpoint="app_info",
        method="GET",
        url=redact_url(f"{BASE}?component_app_id=ks_c&access_token={CANARY}"),
        app_id=app_id,
        attempt=attempt,
        limiter_wait=0.25,
    )


# -- redaction ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"{BASE}?component_app_id=ks_c&access_token={CANARY}",
            f"{BASE}?component_app_id=ks_c&access_token=REDACTED",
        ),
        (
            "https://h/x?component_access_token=a%2Fb&component_appid=ks",
            "https://h/x?component_access_token=REDACTED&component_appid=ks",
        ),
        (
            "https://h/x?ticket=t1&auth_code=c2&app_secret=s3&refresh_token=r4&n=1",
            "https://h/x?ticket=REDACTED&auth_code=REDACTED&app_secret=REDACTED"
            "&refresh_token=REDACTED&n=1",
        ),
        ("https://user:pw@h:8443/p?a=1", "https://REDACTED:REDACTED@h:8443/p?a=1"),
        ("https://h/p?access_token=x#frag=access_token", "https://h/p?access_token=REDACTED"),
        ("https://h/p", "https://h/p"),
        ("https://h/p?flag&a=", "https://h/p?flag&a="),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(URL(url, encoded=True)) == expected


def test_redact_url_never_keeps_part_of_a_token() -> None:
    for form in (CANARY, "CANARY%2Btok%2F5f3a9c1e7b2d%3D%3D", "a=b=c&", "x#y"):
        text = redact_url(f"https://h/p?access_token={form}&x=1")
        assert leaks(text) == []
        assert text.startswith("https://h/p?access_token=REDACTED")


# -- events ---------------------------------------------------------------------------------------


def test_events_are_frozen_and_slotted() -> None:
    hooks = HookSet([Recorder()])
    event = start(hooks)
    assert event is not None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.attempt = 2  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    end = hooks.attempt_end(event, duration=0.5, status=200, result_code=1)
    assert end is not None
    assert (end.endpoint, end.app_id, end.attempt, end.ok, end.outcome) == (
        "app_info",
        "ks_a",
        1,
        True,
        "ok",
    )


def test_attempt_events_in_order_and_matched_by_identity() -> None:
    recorder = Recorder()
    hooks = HookSet([recorder])
    first, second = start(hooks, app_id="ks_1"), start(hooks, app_id="ks_2")
    assert first is not None
    hooks.attempt_end(second, duration=0.1, error=RateLimitedError("slow", code=400002))
    hooks.attempt_end(first, duration=0.2, status=200, result_code=1)
    kinds = [k for k, _ in recorder.events]
    assert kinds == ["start", "start", "end", "end"]
    ends = [e for k, e in recorder.events if k == "end"]
    assert isinstance(ends[0], AttemptEnd)
    assert ends[0].start is second
    assert (ends[0].outcome, ends[0].error_type, ends[0].status, ends[0].result_code) == (
        "throttled",
        "RateLimitedError",
        200,
        400002,
    )
    assert isinstance(ends[1], AttemptEnd)
    assert ends[1].start is first
    assert ends[1].ok
    assert first.limiter_wait == 0.25
    assert first.started_at_ns > 0
    assert "REDACTED" in first.url
    assert leaks(repr(recorder.events)) == []


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        (RateLimitedError("x", code=400002), "throttled"),
        (ServerError("x", code=100200500), "server_error"),
        (TokenExpiredError("x", code=100200108), "platform_error"),
        (RequestTimeoutError("x"), "timeout"),
        (TransportError("x", status=502), "transport_error"),
        (ResponseValidationError("x"), "invalid_response"),
        (asyncio.CancelledError(), "cancelled"),
        (KeyError("x"), "error"),
    ],
)
def test_outcome_of(error: BaseException | None, outcome: str) -> None:
    assert outcome_of(error) == outcome


def test_every_builder_emits_its_event() -> None:
    recorder = Recorder()
    hooks = HookSet([recorder])
    hooks.retry(
        endpoint="app_info",
        app_id="ks_a",
        attempt=1,
        delay=0.3,
        error=TransportError("x", status=503),
    )
    hooks.throttle(
        endpoint="app_info", app_id="ks_a", attempt=2, result_code=400002, learned_rate=210.0
    )
    hooks.circuit_change("open", "closed")
    hooks.call_end(
        endpoint="app_info",
        method="GET",
        app_id="ks_a",
        attempts=3,
        duration=1.5,
        error=ServerError("x", code=400003),
    )
    hooks.call_end(endpoint="app_info", method="GET", app_id="ks_b", attempts=1, duration=0.1)
    bulk = BulkProgressEvent(run_id=7, endpoint="app_info", in_flight=3, done=4, ok=3, failed=1)
    hooks.bulk_progress(bulk)
    assert recorder.events == [
        ("retry", RetryEvent("app_info", "ks_a", 1, 0.3, "TransportError", 503, None)),
        ("throttle", ThrottleEvent("app_info", "ks_a", 2, 400002, 210.0)),
        ("circuit", CircuitChange("open", "closed")),
        (
            "call",
            CallEnd("app_info", "GET", "ks_a", 3, 1.5, "server_error", "ServerError", 400003),
        ),
        ("call", CallEnd("app_info", "GET", "ks_b", 1, 0.1, "ok", None, 1)),
        ("bulk", bulk),
    ]
    assert hooks.wants_bulk_progress


# -- the dispatcher -------------------------------------------------------------------------------


def test_no_hooks_is_disabled() -> None:
    assert HookSet().enabled is False
    assert HookSet([Hooks()]).enabled is True
    assert HookSet([Hooks()]).wants_bulk_progress is False


def test_no_attempt_event_is_built_when_no_hook_listens_to_attempts() -> None:
    class OnlyCalls(Hooks):
        def __init__(self) -> None:
            self.calls: list[CallEnd] = []

        def on_call_end(self, event: CallEnd) -> None:
            self.calls.append(event)

    hook = OnlyCalls()
    hooks = HookSet([hook])
    assert start(hooks) is None
    assert hooks.attempt_end(None, duration=0.1, status=200, result_code=1) is None
    hooks.call_end(endpoint="app_info", method="GET", app_id="ks_a", attempts=1, duration=0.1)
    assert [c.outcome for c in hook.calls] == ["ok"]


def test_refuses_what_is_not_a_hook() -> None:
    with pytest.raises(InvalidInputError, match="Hooks instances, got function"):
        HookSet([lambda event: None])  # type: ignore[list-item]


def test_a_raising_hook_is_logged_once_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, recorder = Broken(), Recorder()
    hooks = HookSet([broken, recorder])
    with caplog.at_level(logging.DEBUG, logger="kuaishou_mp"):
        for attempt in (1, 2, 3):
            event = start(hooks, attempt=attempt)
            hooks.attempt_end(event, duration=0.1, status=200, result_code=1)
        hooks.retry(
            endpoint="app_info", app_id="ks_a", attempt=1, delay=0.1, error=RequestTimeoutError("x")
        )
    assert broken.calls == 4
    assert [k for k, _ in recorder.events] == ["start", "end"] * 3 + ["retry"]
    records = [r for r in caplog.records if "hook" in r.getMessage()]
    assert [r.levelno for r in records] == [logging.WARNING] + [logging.DEBUG] * 3
    assert "Broken.on_attempt_start raised" in records[0].getMessage()
    assert "Broken.on_retry raised" in records[3].getMessage()
    assert all(r.exc_info for r in records)


def test_each_hook_object_gets_its_own_warning(caplog: pytest.LogCaptureFixture) -> None:
    hooks = HookSet([Broken(), Broken()])
    with caplog.at_level(logging.DEBUG, logger="kuaishou_mp"):
        start(hooks)
        start(hooks)
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING, logging.WARNING, logging.DEBUG, logging.DEBUG]


def test_only_overridden_methods_are_called(monkeypatch: pytest.MonkeyPatch) -> None:
    class OnlyRetries(Hooks):
        def __init__(self) -> None:
            self.seen = 0

        def on_retry(self, event: RetryEvent) -> None:
            self.seen += 1

    hook = OnlyRetries()
    hooks = HookSet([hook])

    def refuse(self: Hooks, event: object) -> None:
        raise AssertionError("a method the hook does not override was called")

    # Patched after the HookSet was built: it has already left the base class's no-ops out.
    monkeypatch.setattr(Hooks, "on_attempt_start", refuse)
    monkeypatch.setattr(Hooks, "on_attempt_end", refuse)
    hooks.attempt_end(start(hooks), duration=0.1, status=200, result_code=1)
    hooks.retry(endpoint="e", app_id=None, attempt=1, delay=0.0, error=RequestTimeoutError("x"))
    assert hook.seen == 1


def test_a_hook_that_raises_base_exceptions_is_not_swallowed() -> None:
    class Exits(Hooks):
        def on_circuit_change(self, event: CircuitChange) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        HookSet([Exits()]).circuit_change("open", "closed")


# -- logging --------------------------------------------------------------------------------------


def test_the_library_logger_has_a_null_handler_and_nothing_else_by_default() -> None:
    logger = logging.getLogger("kuaishou_mp")
    assert any(type(h) is logging.NullHandler for h in logger.handlers)
    if "KUAISHOU_MP_LOG" not in os.environ:
        assert all(isinstance(h, logging.NullHandler) for h in logger.handlers)
    handlers = list(logger.handlers)
    setup_logging({})  # idempotent
    assert logger.handlers == handlers


def test_log_fields() -> None:
    assert log_fields("app_info", "ks_a", 2, 400002) == {
        "kuaishou_endpoint": "app_info",
        "kuaishou_app_id": "ks_a",
        "kuaishou_attempt": 2,
        "kuaishou_result_code": 400002,
    }
    assert log_fields(endpoint="app_info") == {"kuaishou_endpoint": "app_info"}
    record = logging.LogRecord("kuaishou_mp", logging.INFO, __file__, 1, "m", (), None)
    record.__dict__.update(log_fields("app_info", "ks_a", 1, 1))
    assert record.__dict__["kuaishou_result_code"] == 1


_CHILD = textwrap.dedent(
    """
    import importlib, logging
    import kuaishou_mp
    from kuaishou_mp._logging import setup_logging
    setup_logging()  # a second time: still one stderr handler
    importlib.reload(kuaishou_mp)
    log = logging.getLogger("kuaishou_mp")
    log.debug("a debug line")
    log.info("an info line")
    log.warning("a warning line")  # without a handler of ours: not Python's last resort
    print(sorted(type(h).__name__ for h in log.handlers))
    """
)


@pytest.mark.parametrize(
    ("value", "shown", "hidden", "handlers"),
    [
        (
            "debug",
            ["a debug line", "an info line", "a warning line"],
            [],
            "['NullHandler', '_EnvHandler']",
        ),
        (
            "INFO",
            ["an info line", "a warning line"],
            ["a debug line"],
            "['NullHandler', '_EnvHandler']",
        ),
        ("loud", [], ["a debug line", "an info line", "a warning line"], "['NullHandler']"),
        ("", [], ["a debug line", "an info line", "a warning line"], "['NullHandler']"),
    ],
)
def test_kuaishou_mp_log_adds_one_stderr_handler(
    value: str, shown: list[str], hidden: list[str], handlers: str
) -> None:
    env = {**os.environ, "KUAISHOU_MP_LOG": value}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == handlers
    for line in shown:
        assert done.stderr.count(line) == 1, done.stderr
        level = line.split()[1].upper()
        assert f"kuaishou_mp {level}] {line}" in done.stderr
    for line in hidden:
        assert line not in done.stderr


def test_public_names_exported() -> None:
    for name in (
        "Hooks",
        "AttemptStart",
        "AttemptEnd",
        "RetryEvent",
        "ThrottleEvent",
        "CircuitChange",
        "CallEnd",
        "BulkProgressEvent",
    ):
        assert name in kuaishou_mp.__all__
        assert getattr(kuaishou_mp, name).__doc__
