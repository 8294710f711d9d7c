"""One call, top to bottom. Each layer is one method with one job, and calls only the next::

    Pipeline.call      token      resolve the authorizer's token; on expiry, compare-and-
                                  invalidate it, get a fresh one and run the layers below again
    Pipeline._retries  retries    the one place deciding whether and when to try again: tenacity
                                  strategies from the RetryPolicy and the endpoint's idempotency,
                                  the retry gate, the delete-confirmation rule
    Pipeline._admitted limiter    the outage circuit (fail fast while the platform is down),
                                  wait for admission, pace at the learned component-wide rate;
                                  a throttled answer goes to the throttle feedback (by default
                                  it learns and sends the call back through the limiter)
    Pipeline._attempt  attempt    timeout -> transport.send -> decode

With hooks, an :class:`~._observe.Observer` watches each layer (call end, retries, throttled
answers, attempts); without, the layers only check that there is none. The client-wide
:class:`~._capacity.Capacity` (learned rate, retry budget, outage circuit) hears every attempt's
outcome through :func:`~._outcomes.tell_capacity`.

The facades (:class:`~kuaishou_mp.Client`, :class:`~kuaishou_mp.auth.AuthClient`) build one
:class:`Request` per call and hand it to :meth:`Pipeline.call`; nothing comes back up but the
result or the error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from functools import partial
from typing import Any
from urllib.parse import quote

from .._endpoints import delete_took_effect
from .._json import dumps
from .._logging import log_fields
from .._session import SessionHolder
from .._transport import send
from .._urls import BaseURL
from ..errors import (
    APIError,
    DomainNotFoundError,
    InvalidInputError,
    KuaishouError,
    RateLimitedError,
    ServerError,
    TokenExpiredError,
    TransportError,
)
from ..hooks import AttemptStart
from ..models import Authorizer, DomainAction
from ..ratelimit import InProcessLimiter, Limiter
from ..retry import RetryPolicy
from ..timeout import Timeout
from ..tokens import TokenProvider
from ._capacity import Capacity, CapacityThrottle
from ._observe import Observer, log_attempt
from ._outcomes import maybe_deleted_already, tell_capacity
from ._request import Request
from ._retries import Veto, resume, retryable
from ._seams import RetryGate, ThrottleFeedback
from ._timeouts import AttemptTimeouts, TimerPool

__all__ = ["Decoder", "Pipeline"]

logger = logging.getLogger("kuaishou_mp")

Decoder = Callable[..., Any]
"""``decode(endpoint, status, body, *, app_id, error_codes, secrets)``: model or typed error."""
_GET_BODY = {"action": DomainAction.GET.value}


class Pipeline:
    """The layers of one client, with the options of one copy (see :meth:`with_options`).

    Everything but ``policy`` and ``timeouts`` is shared by every copy.
    """

    __slots__ = (
        "base_url",
        "capacity",
        "component_app_id",
        "decode",
        "error_codes",
        "gate",
        "holder",
        "limiter",
        "max_bytes",
        "observer",
        "policy",
        "throttle",
        "timeouts",
        "timer_pool",
        "token_query",
        "tokens",
        "try_acquire",
    )

    def __init__(
        self,
        *,
        component_app_id: str,
        holder: SessionHolder,
        decode: Decoder,
        error_codes: Mapping[int, type[APIError]],
        max_bytes: int,
        base_url: BaseURL,
        policy: RetryPolicy,
        timeout: Timeout,
        timer_pool: TimerPool | None = None,
        limiter: Limiter | None = None,
        tokens: TokenProvider | None = None,
        token_query: str | None = None,
        observer: Observer | None = None,
        gate: RetryGate | None = None,
        throttle: ThrottleFeedback | None = None,
        capacity: Capacity | None = None,
    ) -> None:
        self.component_app_id = component_app_id
        self.holder = holder
        self.decode = decode
        self.error_codes = error_codes
        self.max_bytes = max_bytes
        self.base_url = base_url
        self.policy = policy
        self.timer_pool = timer_pool
        self.timeouts = AttemptTimeouts(timeout, timer_pool)
        self.limiter = limiter
        # A limiter that can admit without a coroutine (the in-process one) does so on the hot
        # path; acquire() is awaited only when a call has to wait.
        self.try_acquire: Callable[[str], bool] | None = (
            limiter.try_acquire if isinstance(limiter, InProcessLimiter) else None
        )
        self.tokens = tokens
        # The query every token-bearing URL starts with; the token, quoted, ends it.
        self.token_query = token_query
        self.observer = observer
        self.gate = gate
        # Client-wide: the learned rate, the retry budget and the outage circuit.
        self.capacity = capacity = capacity or Capacity()
        if throttle is None and limiter is not None:
            throttle = CapacityThrottle(limiter, capacity)
        self.throttle = throttle

    def with_options(
        self, *, policy: RetryPolicy, timeout: Timeout, observer: Observer | None
    ) -> Pipeline:
        """A pipeline sharing everything with this one but the policy, timeout and hooks."""
        return Pipeline(
            component_app_id=self.component_app_id,
            holder=self.holder,
            decode=self.decode,
            error_codes=self.error_codes,
            max_bytes=self.max_bytes,
            base_url=self.base_url,
            policy=policy,
            timeout=timeout,
            timer_pool=self.timer_pool,
            limiter=self.limiter,
            tokens=self.tokens,
            token_query=self.token_query,
            observer=observer,
            gate=self.gate,
            throttle=self.throttle,
            capacity=self.capacity,
        )

    # -- token ---------------------------------------------------------------------------------

    def call(self, req: Request) -> Coroutine[Any, Any, Any]:
        """Run ``req`` through every layer; the coroutine returns the endpoint's model."""
        observer = self.observer
        if observer is None:  # no wrapping coroutine on the hot path
            return self._call(req)
        return observer.call(self._call, req)

    async def _call(self, req: Request) -> Any:
        try:
            holder = self.holder
            req.session = holder.session or holder.get()  # get() raises once closed
            authorizer = req.authorizer
            if type(authorizer) is Authorizer:  # the common case, without a coroutine
                req.app_id = authorizer.app_id
                self._use_token(req, authorizer.access_token)
            elif self.token_query is not None:  # not the component's own call: needs a token
                req.app_id, token = await self._resolve(authorizer)
                self._use_token(req, token)
            try:
                return await self._retries(req)
            except TokenExpiredError:
                tokens = self.tokens
                if tokens is None or not isinstance(authorizer, str):
                    raise
            # Exactly the token that failed is invalidated: if another task already replaced
            # it, the provider keeps the new one. One fresh call; a second expiry is raised.
            app_id = authorizer
            assert req.token is not None
            await tokens.invalidate(app_id, req.token)
            self._use_token(req, await tokens.get_token(app_id))
            return await self._retries(req)
        except KuaishouError as exc:
            # No implicit context (aiohttp's exception has the URL): a task written in Python
            # (3.10's runner backport) keeps the one that woke it "handled" all step long.
            if exc.__cause__ is None:  # a deliberate ``raise ... from`` keeps its cause
                exc.__context__ = None
            raise

    def _use_token(self, req: Request, token: str) -> None:
        query = self.token_query
        assert query is not None  # only clients that call with authorizers' tokens get here
        req.token = token
        # Plain ASCII tokens (the usual kind) need no escaping; quote() is the slow path.
        quoted = token if token.isascii() and token.isalnum() else quote(token, safe="")
        req.url = self.base_url.join(req.endpoint.path, query + quoted)

    async def _resolve(self, authorizer: object) -> tuple[str, str]:
        if isinstance(authorizer, str):
            if self.tokens is None:
                raise InvalidInputError(
                    "a bare app id needs a token_provider on the Client; pass an Authorizer"
                )
            if not authorizer:
                raise InvalidInputError("app id must not be empty")
            return authorizer, await self.tokens.get_token(authorizer)
        if isinstance(authorizer, Authorizer):
            return authorizer.app_id, authorizer.access_token
        raise InvalidInputError(
            f"expected an Authorizer or an app id string, got {type(authorizer).__name__}"
        )

    # -- retries -------------------------------------------------------------------------------

    async def _retries(self, req: Request) -> Any:
        policy = self.policy
        started = time.monotonic()
        req.deadline = None if policy.deadline is None else started + policy.deadline
        req.policy = policy
        budget = policy.budget
        if budget is not None:
            self.capacity.first_attempt(budget, started)
        try:
            # The first attempt is made directly: the retry machinery is built only after a
            # failure, since most calls succeed at once.
            try:
                return await self._admitted(req)
            except Exception as exc:  # not BaseException: CancelledError is never retried
                failure = exc
            return await resume(
                failure,
                partial(self._admitted, req),
                policy,
                retry=retryable(policy, req.endpoint.idempotency),
                started=started,
                endpoint=req.endpoint.name,
                app_id=req.app_id or self.component_app_id,
                veto=self._veto(req),
                retried=None if self.observer is None else partial(self.observer.retried, req),
            )
        except DomainNotFoundError as exc:
            if not maybe_deleted_already(req):
                raise
            problem = exc
        return await self._confirm_delete(req, problem)

    def _veto(self, req: Request) -> Veto | None:
        # The gate first (it may count what it allows), then the client's retry budget.
        gate, budget, capacity = self.gate, self.policy.budget, self.capacity
        if gate is None and budget is None:
            return None

        def veto(failure: BaseException) -> bool:
            if gate is not None and not gate.allow_retry(req, failure):
                return True
            return budget is not None and not capacity.withdraw_retry(budget)

        return veto

    async def _confirm_delete(self, req: Request, problem: DomainNotFoundError) -> Any:
        # A delete retried after a failure that may have reached the platform: 403106 may mean
        # our first attempt already deleted the domains. Only a read can tell.
        get = Request(
            req.endpoint,
            req.authorizer,
            _GET_BODY,
            dumps(_GET_BODY),
            req.stats,
            url=req.url,
            app_id=req.app_id,
            secrets=req.secrets,
        )
        get.session, get.token = req.session, req.token
        current = await self._retries(get)
        assert req.body is not None
        if not delete_took_effect(req.endpoint, req.body, current):
            raise problem
        logger.info(
            "%s delete confirmed by get after an ambiguous retry app_id=%s",
            req.endpoint.name,
            problem.app_id,
            extra=log_fields(req.endpoint.name, problem.app_id, req.stats.attempts),
        )
        return current

    # -- limiter -------------------------------------------------------------------------------

    async def _admitted(self, req: Request) -> Any:
        limiter, capacity = self.limiter, self.capacity
        if limiter is None:
            if capacity.circuit.state != "closed":
                await _admit(capacity, req)
            req.stats.attempts += 1
            try:
                return await self._attempt(req, 0.0)
            except RateLimitedError as exc:
                if self.observer is not None:
                    self.observer.throttled(req, exc)
                raise
        app_id = req.app_id
        assert app_id is not None
        while True:
            if capacity.circuit.state != "closed":
                await _admit(capacity, req)
            req.stats.attempts += 1
            waited = 0.0
            try_acquire = self.try_acquire
            if try_acquire is None or not try_acquire(app_id):
                began = time.monotonic()
                await limiter.acquire(app_id)
                waited = time.monotonic() - began
            # Admitted for the authorizer (and the hard global cap): now the learned
            # component-wide rate spaces the sends of the whole client.
            sent_at = capacity.try_pace(app_id)
            req.sent_at = sent_at if sent_at is not None else await capacity.pace(app_id)
            try:
                return await self._attempt(req, waited)
            except RateLimitedError as exc:
                throttle = self.throttle
                again = throttle is not None and await throttle.throttled(req, exc)
                observer = self.observer
                if observer is not None:  # after the feedback: it may have learned a rate
                    observer.throttled(req, exc)
                    if again:  # re-queued: a resend, though it spends no retry attempt
                        observer.retried(req, exc, 0.0)
                if not again:
                    raise

    # -- attempt -------------------------------------------------------------------------------

    async def _attempt(self, req: Request, waited: float) -> Any:
        endpoint = req.endpoint
        started = time.monotonic()
        timeouts = self.timeouts
        client_timeout, timer = timeouts.client_timeout, timeouts.timer
        deadline = req.deadline
        if deadline is not None and deadline - started < timeouts.total:
            # Only a nearing deadline cuts the attempt's timeout (or ends the call).
            client_timeout = timeouts.cut(
                deadline, started, endpoint=endpoint.name, app_id=req.app_id
            )
            timer = None
        observer = self.observer
        start = None if observer is None else observer.attempt_started(req, waited)
        session, url = req.session, req.url
        # Both set by the token layer (or, for the component's own calls, by the facade).
        assert session is not None
        assert url is not None
        secrets = req.scrubbed()
        status = None
        try:
            status, body = await send(
                session,
                endpoint.method,
                url,
                req.payload,
                timeout=client_timeout,
                max_bytes=self.max_bytes,
                secrets=secrets,
                endpoint=endpoint.name,
                app_id=req.app_id,
                timer=timer,
            )
            result = self.decode(
                endpoint,
                status,
                body,
                app_id=req.app_id,
                error_codes=self.error_codes,
                secrets=secrets,
            )
        except BaseException as exc:
            self._failed(req, exc, status, started, start)
            raise
        self.capacity.answered(time.monotonic())
        if logger.isEnabledFor(logging.DEBUG):
            log_attempt(req, status, 1, started)
        if observer is not None:
            observer.attempt_ended(start, started, status, 1, None)
        return result

    def _failed(
        self,
        req: Request,
        exc: BaseException,
        status: int | None,
        started: float,
        start: AttemptStart | None,
    ) -> None:
        stats = req.stats
        code = None
        session = req.session
        if session is None or not session.closed:  # a failure we caused says nothing of it
            tell_capacity(self.capacity, req.app_id, exc, status)
        if status is None:  # nothing came back
            if isinstance(exc, TransportError) and exc.request_sent is not False:
                stats.ambiguous = True
        elif isinstance(exc, APIError):
            code = exc.code
            if isinstance(exc, ServerError):
                stats.ambiguous = True
            if logger.isEnabledFor(logging.DEBUG):
                log_attempt(req, status, code, started)
        elif isinstance(exc, TransportError):
            stats.ambiguous = True  # an HTTP error status: the platform may have acted
        if self.observer is not None:
            self.observer.attempt_ended(start, started, status, code, exc)


async def _admit(capacity: Capacity, req: Request) -> None:
    # A refused attempt is not an attempt. Once the client is closed, the transport's
    # ClientClosedError is the truth, whatever the circuit says.
    session = req.session
    if session is None or not session.closed:
        await capacity.admit(req)
