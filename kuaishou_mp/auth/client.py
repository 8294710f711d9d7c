"""Typed calls for the five documented platform-authorization (OAuth) endpoints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import aiohttp

from .._callstats import CallStats
from .._client import DEFAULT_BASE_URL
from .._default import DEFAULT, Default
from .._endpoints import Endpoint
from .._pipeline import Capacity, Observer, Pipeline, Request
from .._session import ConnectionLimits, SessionHolder, check_client_options
from .._transport import DEFAULT_MAX_RESPONSE_BYTES
from .._urls import BaseURL
from .._validate import text
from ..errors import APIError
from ..hooks import Hooks
from ..retry import RetryPolicy
from ..timeout import Timeout
from ._endpoints import (
    AUTHORIZER_ACCESS_TOKEN,
    COMPONENT_ACCESS_TOKEN,
    PRE_AUTH_CODE,
    RE_AUTHORIZATION_CODE,
    START_PUSH_TICKET,
    build_query,
    decode,
)
from .models import AuthorizationCode, AuthorizerTokens, ComponentAccessToken, PreAuthCode

__all__ = ["AuthClient"]


class AuthClient:
    """Typed calls for the platform-authorization endpoints of your third-party application.

    Holds the component app id and secret, and an ``aiohttp`` session (its own, created on
    first use inside the running loop and closed by :meth:`aclose`, or one you inject, which is
    never closed). Use it as an async context manager or call :meth:`aclose`::

        async with AuthClient("ks_component_app_id", secret) as auth:
            await auth.start_push_ticket()

    Most applications use it through :class:`~kuaishou_mp.auth.TokenManager`, which keeps the
    tokens. No secret (the component secret, tickets, codes, tokens) appears in its repr, its
    errors or its logs.

    Args:
        component_app_id: Your third-party application's app id.
        component_app_secret: Its secret.
        base_url: The platform's base URL (tests point it at the bundled fake): ``http://`` or
            ``https://``, a host, and optionally a port and a path prefix; no query or fragment.
        session: An ``aiohttp.ClientSession`` to use as is; it is never closed by the client.
        timeout: Per-attempt timeout: seconds, or a :class:`~kuaishou_mp.Timeout`.
        retry: The :class:`~kuaishou_mp.RetryPolicy`; ``None`` disables retries. The
            authorization-code exchange retries only failures that certainly did not reach
            the platform, and throttling.
        error_codes: Extra or overriding entries for the result-code table.
        max_response_bytes: Larger bodies are not read; the call fails with a TransportError.
            An integer >= 1; the default is 1 MiB (1048576 bytes).
        hooks: :class:`~kuaishou_mp.Hooks` called at every attempt, retry and call end, as
            for :class:`~kuaishou_mp.Client`. URLs in their events have the secret, tickets,
            codes and tokens ``REDACTED``.

    Raises:
        InvalidInputError: An argument is malformed.
    """

    def __init__(
        self,
        component_app_id: str,
        component_app_secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        timeout: Timeout | float | None = 10.0,
        retry: RetryPolicy | Default | None = DEFAULT,
        error_codes: Mapping[int, type[APIError]] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        hooks: Iterable[Hooks] | None = None,
    ) -> None:
        error_table = check_client_options(
            component_app_id, base_url, error_codes, max_response_bytes
        )
        capacity = Capacity()
        observer = Observer.watching(hooks, capacity)
        text("component_app_secret", component_app_secret, secret=True)
        self._component_app_id = component_app_id
        self._secret = component_app_secret
        self._base_url = BaseURL(base_url)
        self._holder = SessionHolder(
            session, limits=ConnectionLimits(), verify_ssl=True, owner="AuthClient"
        )
        # No limiter, no token provider, no shared timer: the component's own calls are few.
        self._pipeline = Pipeline(
            component_app_id=component_app_id,
            holder=self._holder,
            decode=decode,
            error_codes=error_table,
            max_bytes=max_response_bytes,
            base_url=self._base_url,
            policy=RetryPolicy() if isinstance(retry, Default) else (retry or RetryPolicy.none()),
            timeout=Timeout.of(timeout),
            observer=observer,
            capacity=capacity,
        )

    def __repr__(self) -> str:
        state = "closed" if self._holder.closed else "open"
        base_url = self._base_url.shown
        return f"<AuthClient component_app_id={self._component_app_id!r} {base_url} {state}>"

    @property
    def component_app_id(self) -> str:
        """Your third-party application's app id."""
        return self._component_app_id

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has been called."""
        return self._holder.closed

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> AuthClient:
        self._holder.get()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's own session (an injected one stays open). Idempotent.

        Calls made afterwards raise :class:`~kuaishou_mp.ClientClosedError`.
        """
        await self._holder.close()

    async def close(self) -> None:
        """Alias of :meth:`aclose`, kept for compatibility (``aclose`` is the spelling every
        closable object of the SDK shares)."""
        await self.aclose()

    # -- the five endpoints ----------------------------------------------------------------------

    async def start_push_ticket(self) -> None:
        """Ask the platform to start pushing ``component_ticket`` to your authorization-event URL.

        Afterwards a ticket arrives every 10 minutes; hand each one to
        :meth:`TokenManager.set_ticket <kuaishou_mp.auth.TokenManager.set_ticket>`.

        Raises:
            AuthError: The component app id or secret was refused (100200101).
            APIError: Any other refusal.
            TransportError: No JSON answer arrived after the retries.
        """
        await self._call(
            START_PUSH_TICKET,
            {"component_app_id": self._component_app_id, "component_app_secret": self._secret},
            secrets=(),
        )

    async def component_access_token(self, ticket: str) -> ComponentAccessToken:
        """Get a new component access token from the latest pushed ticket.

        Each call issues a new token; earlier ones stay valid until they expire.

        Args:
            ticket: The latest ``component_ticket`` the platform pushed.

        Raises:
            InvalidInputError: ``ticket`` is empty.
            AuthError: The app id, secret or ticket was refused.
            APIError: Any other refusal; TransportError, ResponseValidationError as usual.
        """
        params = {
            "component_app_id": self._component_app_id,
            "component_app_secret": self._secret,
            "component_verify_ticket": ticket,
        }
        result: ComponentAccessToken = await self._call(
            COMPONENT_ACCESS_TOKEN, params, secrets=(ticket,)
        )
        return result

    async def pre_auth_code(self, component_access_token: str) -> PreAuthCode:
        """Get a pre-authorization code (for the authorization page; lives 10 minutes).

        Args:
            component_access_token: A live component access token.

        Raises:
            TokenExpiredError: The component token expired (100200108).
            AuthError: The token or app id was refused.
            APIError: Any other refusal; TransportError, ResponseValidationError as usual.
        """
        params = {
            "component_app_id": self._component_app_id,
            "component_access_token": component_access_token,
        }
        result: PreAuthCode = await self._call(
            PRE_AUTH_CODE, params, secrets=(component_access_token,)
        )
        return result

    async def authorizer_tokens(
        self,
        component_access_token: str,
        authorization_code: str,
        *,
        authorized_app_id: str | None = None,
    ) -> AuthorizerTokens:
        """Exchange an authorization code for the authorizer's tokens and granted permissions.

        Args:
            component_access_token: A live component access token.
            authorization_code: The code from the authorization redirect, or one recovered by
                :meth:`recover_authorization_code`.
            authorized_app_id: The app id the code belongs to, when known: only named in
                errors and logs (nothing is sent).

        Raises:
            TokenExpiredError: The component token expired (100200108).
            RefreshTokenExpiredError: The authorization lapsed (100200113).
            APIError: Any other refusal (an unknown or spent code is a BadRequestError);
                TransportError, ResponseValidationError as usual.
        """
        params = {
            "component_app_id": self._component_app_id,
            "component_access_token": component_access_token,
            "authorization_code": authorization_code,
        }
        result: AuthorizerTokens = await self._call(
            AUTHORIZER_ACCESS_TOKEN,
            params,
            secrets=(component_access_token, authorization_code),
            app_id=authorized_app_id,
        )
        return result

    async def recover_authorization_code(
        self, component_access_token: str, authorized_app_id: str
    ) -> AuthorizationCode:
        """Get a new authorization code for a mini-program that authorized you (lives 1 hour).

        Exchange it with :meth:`authorizer_tokens` for fresh authorizer tokens.

        Args:
            component_access_token: A live component access token.
            authorized_app_id: The authorized mini-program's app id.

        Raises:
            TokenExpiredError: The component token expired (100200108).
            RefreshTokenExpiredError: The authorization lapsed; the mini-program must
                authorize again (100200113).
            APIError: Any other refusal; TransportError, ResponseValidationError as usual.
        """
        params = {
            "component_app_id": self._component_app_id,
            "component_access_token": component_access_token,
            "authorized_app_id": authorized_app_id,
        }
        result: AuthorizationCode = await self._call(
            RE_AUTHORIZATION_CODE,
            params,
            secrets=(component_access_token,),
            app_id=authorized_app_id,
        )
        return result

    # -- the pipeline ----------------------------------------------------------------------------

    async def _call(
        self,
        endpoint: Endpoint,
        params: Mapping[str, object],
        *,
        secrets: tuple[str, ...],
        app_id: str | None = None,
    ) -> Any:
        # Made with the component's own credentials: no authorizer, the URL is complete here.
        url = self._base_url.join(endpoint.path, build_query(endpoint, params))
        request = Request(
            endpoint,
            None,
            None,
            None,
            CallStats(),
            url=url,
            app_id=app_id,
            secrets=(self._secret, *secrets),
        )
        return await self._pipeline.call(request)
