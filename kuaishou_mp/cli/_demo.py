"""``kuaishou-mp demo``: the SDK's main job against the bundled fake platform, in one process."""

from __future__ import annotations

import collections
import time
from typing import Any

import attrs
from aiohttp import web
from rich.console import Console
from rich.table import Table

from .._client import Client
from ..auth import AuthClient, TokenManager
from ..bulk import BulkRun
from ..domains import ReconcileMode, ReconcileResult
from ..events import PushReceiver
from ..models import AppInfo, WebviewDomains
from ..retry import RetryPolicy
from ..testing import FakeKuaishou
from ._job import EXIT_INTERRUPTED, EXIT_OK, run_async
from ._progress import errors_text, live_progress

__all__ = ["DEMO_DOMAIN", "run_demo"]

DEMO_DOMAIN = "demo.kuaishou-mp.example.com"
_LATENCY = 0.005
# Answers the fake gives instead of a normal one; the SDK retries every one of them.
_FAULT_OUTCOMES = ("http:500", "http:502", "http:503", "http:504", "drop", "malformed")
_THROTTLED = "result:400002"
_PUSH_PATH = "/kuaishou/push"
_RETRY = RetryPolicy(backoff_base=0.02, backoff_max=0.5, deadline=30.0)


def run_demo(count: int, concurrency: int, progress: bool | None) -> int:
    """Run the demo and print its report on standard output; return the exit code."""
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    show = err.is_terminal if progress is None else progress
    try:
        run_async(_demo(count, concurrency, out, err if show else None))
    except KeyboardInterrupt:
        err.print("demo: interrupted")
        return EXIT_INTERRUPTED
    return EXIT_OK


class _Phase:
    """One bulk run of the demo, with what the fake platform saw during it."""

    def __init__(self, name: str, fake: FakeKuaishou) -> None:
        self.name = name
        self._fake = fake
        self._before = collections.Counter(fake.counters)
        self.requests = 0
        self.faults = 0
        self.throttled = 0
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.sample: Any = None

    async def consume(self, run: BulkRun[Any], total: int, console: Console | None) -> None:
        async with run, live_progress(console, self.name, total, run.progress):
            async for result in run:
                value = result.value
                if isinstance(value, ReconcileResult):
                    self.outcomes["changed" if value.changed else "already there"] += 1
                elif self.sample is None and isinstance(value, AppInfo):
                    self.sample = result
        self.summary = run.summary()
        seen = self._fake.counters - self._before
        self.requests = seen["requests"]
        self.faults = sum(seen[k] for k in _FAULT_OUTCOMES)
        self.throttled = seen[_THROTTLED]


class _Chain:
    """The push chain of the demo: the fake pushes to the SDK's receiver, the manager uses it."""

    def __init__(self, fake: FakeKuaishou, base_url: str) -> None:
        self.fake = fake
        auth = AuthClient(
            fake.component_app_id,
            fake.oauth.component_app_secret,
            base_url=base_url,
            timeout=5.0,
            retry=_RETRY,
        )
        self.manager = TokenManager(auth)
        self.receiver = PushReceiver(
            fake.component_app_id,
            fake.push.verification_token,
            fake.push.encryption_key,
            token_manager=self.manager,
        )
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Serve the receiver on a free port and point the fake's pushes at it."""
        app = web.Application()
        app.router.add_post(_PUSH_PATH, self.receiver.aiohttp_handler())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}{_PUSH_PATH}"
        self.fake.push.url = url
        self.fake.push.retry_delay = 0.05
        return url

    async def first_component_token(self) -> None:
        """start_push_ticket: the fake pushes a ticket; the manager turns it into a token."""
        await self.manager.start_push_ticket()
        await self.fake.push.wait_idle(10.0)
        await self.manager.get_component_token()

    async def aclose(self) -> None:
        await self.manager.aclose()
        if self._runner is not None:
            await self._runner.cleanup()


async def _demo(count: int, concurrency: int, out: Console, err: Console | None) -> None:
    started = time.monotonic()
    # record_requests=False: the demo needs only the counters, not a record of every request.
    fake = FakeKuaishou(
        component_app_id="ks_component_demo", latency=_LATENCY, record_requests=False, seed=2024
    )
    apps = fake.add_authorizers(count, prefix="ks_demo_")
    # Transient faults on a few percent of the mini-programs (each one's first request fails).
    fake.chaos(http_5xx=0.02, drop=0.005, rate_limited=0.01, malformed_json=0.005)
    n_revoked = max(1, count // 500)
    revoked = [apps[i * (count // n_revoked)].app_id for i in range(n_revoked)]
    n_expired = max(1, count // 50)
    expired = [apps[i * (count // n_expired) + 1].app_id for i in range(n_expired)]
    base_url = await fake.start("127.0.0.1", 0)
    chain = _Chain(fake, base_url)
    try:
        push_url = await chain.start()
        out.print(
            f"Fake Kuaishou platform on {base_url}: {count:,} mini-programs, "
            f"{_LATENCY * 1000:.0f} ms latency, faults injected; it pushes to the SDK's "
            f"receiver on {push_url}."
        )
        await chain.first_component_token()
        pushes = fake.push.counters["acknowledged"]
        # Bare app ids: the token manager gets each authorizer's token on first use.
        app_ids = [a.app_id for a in apps]
        async with Client(
            fake.component_app_id,
            base_url=base_url,
            timeout=5.0,
            token_provider=chain.manager,
            # Short backoff: the fake's faults are one-offs, and a demo should not idle.
            retry=_RETRY,
        ) as client:
            info = _Phase("app-info", fake)
            await info.consume(client.bulk_app_info(app_ids, concurrency=concurrency), count, err)
            obtained = sum(fake.oauth.exchanges.values())
            # Between the runs: some tokens expire (renewed on the way), a few are revoked
            # (which no renewal fixes: the summary shows them).
            for app_id in expired:
                fake.expire_token(app_id)
            for app_id in revoked:
                fake.revoke_token(app_id)
            fake.chaos(http_5xx=0.02, rate_limited=0.01)
            domains = _Phase("reconcile webview (ensure)", fake)
            await domains.consume(
                client.bulk_reconcile_webview_domains(
                    app_ids,
                    WebviewDomains(webview=(DEMO_DOMAIN,)),
                    ReconcileMode.ENSURE,
                    concurrency=concurrency,
                ),
                count,
                err,
            )
            renewed = sum(fake.oauth.exchanges.values()) - obtained
        verified = sum(1 for a in apps if DEMO_DOMAIN in a.webview_domains)
    finally:
        await chain.aclose()
        await fake.stop()
    tokens = _Tokens(pushes, fake.oauth.component_tokens_issued, obtained, renewed)
    _report(out, count, [info, domains], verified, len(revoked), tokens, time.monotonic() - started)


@attrs.frozen
class _Tokens:
    """What the push chain and the token manager did during the demo."""

    pushes: int
    component_tokens: int
    obtained: int
    renewed: int


def _report(
    out: Console,
    count: int,
    phases: list[_Phase],
    verified: int,
    revoked: int,
    tokens: _Tokens,
    elapsed: float,
) -> None:
    table = Table(title="Summary", title_justify="left")
    for column in ("job", "done", "ok", "failed", "errors by class", "rate", "time"):
        table.add_column(
            column, justify="left" if column in ("job", "errors by class") else "right"
        )
    for phase in phases:
        s = phase.summary
        table.add_row(
            phase.name,
            f"{s.total:,}",
            f"{s.ok:,}",
            f"{s.failed:,}",
            errors_text(s.errors_by_class) or "-",
            f"{s.rate:,.0f}/s",
            f"{s.elapsed:.1f}s",
        )
    out.print(table)
    requests = sum(p.requests for p in phases)
    faults = sum(p.faults for p in phases)
    throttled = sum(p.throttled for p in phases)
    out.print(
        f"The platform answered {requests:,} requests; the SDK retried {faults:,} gateway "
        f"errors, dropped connections and broken bodies, and {throttled:,} throttled calls "
        "(slowing those mini-programs down)."
    )
    out.print(
        f"Tokens: the platform pushed {tokens.pushes} signed, encrypted ticket(s) to the SDK's "
        f"receiver; the TokenManager got {tokens.component_tokens} component token(s) from it, "
        f"then {tokens.obtained:,} authorizer tokens by bare app id, and renewed "
        f"{tokens.renewed:,} that expired on the way."
    )
    sample = phases[0].sample
    if sample is not None:
        value: AppInfo = sample.value
        status = value.status.name if value.status is not None else "?"
        out.print(f"Sample: {sample.app_id} is {value.app_name!r}, status {status}.")
    changed = phases[1].outcomes
    why = " (the others have revoked tokens)" if verified + revoked == count else ""
    out.print(
        f"Webview domain {DEMO_DOMAIN} added to {changed['changed']:,} mini-programs "
        f"({changed['already there']:,} had it); the platform now lists it for {verified:,} "
        f"of {count:,}{why}."
    )
    out.print(
        f"Finished in {elapsed:.1f}s. Next: `kuaishou-mp fake-server`, then the commands it "
        "prints; `kuaishou-mp --help`."
    )
