"""The token manager: component and authorizer tokens, kept fresh, refreshed once at a time."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from .._validate import instance, number
from ..errors import InvalidInputError, KuaishouError, ResponseValidationError, TokenExpiredError
from ..tokens import TokenUnavailableError
from .client import AuthClient
from .models import AuthorizerTokens, PreAuthCode
from .storage import InMemoryTokenStorage, KeyedLocks, LockTimeoutError, StoredToken, TokenStorage

__all__ = ["RefreshFunction", "TokenManager"]

logger = logging.getLogger("kuaishou_mp")

T = TypeVar("T")

RefreshFunction = Callable[[str, "str | None"], Awaitable[AuthorizerTokens]]
"""``async refresh(app_id, refresh_token) -> AuthorizerTokens``: your own way to renew an
authorizer's access token. ``refresh_token`` is the stored one (``None`` if none is stored). The
result needs ``authorizer_access_token`` and ``expires_in``; a non-empty
``authorizer_refresh_token`` replaces the stored one."""

_COMPONENT = None  # the lock and storage "app id" of the component token

# After an early renewal fails, the current token is served without trying again for this long:
# a platform that is down is not asked for a new token by every call, and the log gets one
# warning per token rather than one per call.
_EARLY_RETRY_GAP = 30.0


class TokenManager:
    """Keeps your component token and your authorizers' access tokens fresh; a TokenProvider.

    Give it to :class:`~kuaishou_mp.Client` and call with bare app ids::

        storage = RedisTokenStorage.from_url("redis://redis.internal:6379/0")
        async with TokenManager(AuthClient(cid, secret), storage=storage) as manager:
            await manager.set_ticket(ticket)  # from your authorization-event receiver
            async with Client(cid, token_provider=manager) as client:
                info = await client.app_info("ks_app_id")

    The **component token** comes from the latest ticket handed to :meth:`set_ticket` and is
    renewed ahead of expiry (the platform keeps older tokens valid, so this is safe). An
    **authorizer token** is renewed ahead of expiry, and when the client reports it expired
    (:meth:`invalidate`): by recovering an authorization code and exchanging it (the documented
    route), or by ``refresh`` if you give one.

    A token is due for renewal ``refresh_before`` plus a random ``[0, jitter]`` seconds before
    it expires (but not before half its lifetime), so tokens issued together are not renewed
    together. Until it expires, callers keep getting the current token while one renewal runs,
    and if that renewal fails: it is logged as a warning once per token and tried again at most
    every 30 seconds. After expiry, callers wait for the renewal.

    One renewal per token at a time: an ``asyncio.Lock`` within the process and
    :meth:`TokenStorage.lock <kuaishou_mp.auth.TokenStorage.lock>` across processes (with
    :class:`~kuaishou_mp.auth.RedisTokenStorage`: a Redis lock). Whoever gets the lock reads
    the storage again first, so waiters take the token the holder stored.

    The manager owns the client and the storage it is given: :meth:`aclose` closes both.

    Args:
        auth: The :class:`~kuaishou_mp.auth.AuthClient` of your component app.
        storage: Where tokens live; default an :class:`~kuaishou_mp.auth.InMemoryTokenStorage`.
            Share a :class:`~kuaishou_mp.auth.RedisTokenStorage` between processes.
        refresh: Your own :data:`RefreshFunction` for authorizer tokens, instead of the
            recover-and-exchange route.
        refresh_before: Seconds before expiry at which a renewal is due.
        jitter: Up to this many seconds more, drawn per token.
        lock_ttl: Seconds a cross-process lock outlives a holder that died.
        lock_timeout: Seconds a caller waits for another process's renewal before
            :class:`~kuaishou_mp.auth.LockTimeoutError`.
        clock: Seconds since the epoch (tests pass a fake clock).

    Raises:
        InvalidInputError: An argument is malformed.
    """

    def __init__(
        self,
        auth: AuthClient,
        *,
        storage: TokenStorage | None = None,
        refresh: RefreshFunction | None = None,
        refresh_before: float = 300.0,
        jitter: float = 300.0,
        lock_ttl: float = 30.0,
        lock_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        instance("auth", auth, AuthClient)
        self._auth = auth
        self._cid = auth.component_app_id
        self._storage: TokenStorage = storage if storage is not None else InMemoryTokenStorage()
        self._refresh = refresh
        number("refresh_before", refresh_before, low_ok=True, finite=False)
        number("jitter", jitter, low_ok=True, finite=False)
        number("lock_ttl", lock_ttl, finite=False)
        number("lock_timeout", lock_timeout, low_ok=True, finite=False)
        self._refresh_before = float(refresh_before)
        self._jitter = float(jitter)
        self._lock_ttl = float(lock_ttl)
        self._lock_timeout = float(lock_timeout)
        self._clock = clock
        self._random = random.Random()
        self._locks: KeyedLocks[str | None] = KeyedLocks()
        # app id -> (expiry of the token whose early renewal failed, when to try again)
        self._early_failures: dict[str | None, tuple[float, float]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"<TokenManager component_app_id={self._cid!r} storage={type(self._storage).__name__}>"
        )

    @property
    def component_app_id(self) -> str:
        """The component app id the tokens belong to."""
        return self._cid

    @property
    def auth(self) -> AuthClient:
        """The :class:`~kuaishou_mp.auth.AuthClient` the manager calls through."""
        return self._auth

    @property
    def storage(self) -> TokenStorage:
        """The storage the tokens live in."""
        return self._storage

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> TokenManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the auth client and the storage. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._auth.aclose()
        finally:
            await self._storage.aclose()

    # -- the component token ---------------------------------------------------------------------

    async def start_push_ticket(self) -> None:
        """Ask the platform to start pushing tickets (see :meth:`AuthClient.start_push_ticket
        <kuaishou_mp.auth.AuthClient.start_push_ticket>`)."""
        await self._auth.start_push_ticket()

    async def set_ticket(self, ticket: str, *, event_time: int | None = None) -> bool:
        """Store the latest ``component_ticket`` the platform pushed to your application.

        :class:`~kuaishou_mp.events.PushReceiver` calls it for you. With a shared storage, any
        process may call it and every process uses the ticket.

        Args:
            ticket: The ticket.
            event_time: When the platform issued it (the push's ``eventTime``, milliseconds).
                A ticket older than the stored one is not stored: the ticket never goes
                backwards, even when pushes arrive out of order.

        Returns:
            Whether the ticket was stored (``False``: the stored one is newer).

        Raises:
            InvalidInputError: ``ticket`` is not a non-empty string, or ``event_time`` not an
                integer.
            TokenStorageError: The storage failed.
        """
        if not isinstance(ticket, str) or not ticket:
            raise InvalidInputError("ticket must be a non-empty string")
        if event_time is not None and (
            isinstance(event_time, bool) or not isinstance(event_time, int)
        ):
            raise InvalidInputError("event_time must be an integer (milliseconds) or None")
        stored = await self._storage.save_ticket(self._cid, ticket, event_time)
        if stored:
            logger.debug("component ticket stored component_app_id=%s", self._cid)
        else:
            logger.info(
                "component ticket older than the stored one, not stored component_app_id=%s",
                self._cid,
            )
        return stored

    async def get_component_token(self) -> str:
        """A live component access token, renewed from the stored ticket when due.

        Raises:
            TokenUnavailableError: No ticket has been stored yet.
            LockTimeoutError: Another process's renewal took longer than ``lock_timeout``.
            APIError: The platform refused the renewal (e.g. a stale ticket).
            TransportError: The renewal got no answer.
        """
        return await self._fresh(
            _COMPONENT,
            lambda: self._storage.load_component_token(self._cid),
            self._renew_component,
        )

    async def invalidate_component_token(self, token: str) -> None:
        """Forget the component token if it is still ``token`` (compare-and-invalidate).

        Raises:
            TokenStorageError: The storage failed.
        """
        if await self._storage.invalidate_component_token(self._cid, token):
            logger.info("component token invalidated component_app_id=%s", self._cid)

    async def pre_auth_code(self) -> PreAuthCode:
        """A pre-authorization code for your authorization page (lives 10 minutes).

        Raises:
            APIError: The platform refused; TransportError as usual.
        """
        return await self._with_component(self._auth.pre_auth_code)

    async def authorize(self, authorization_code: str) -> AuthorizerTokens:
        """Exchange the code from an authorization redirect, and store the authorizer's tokens.

        Args:
            authorization_code: The code the platform sent after the mini-program authorized.

        Returns:
            The tokens and the granted permissions (``authorizer_app_id`` names the app).

        Raises:
            ResponseValidationError: The answer names no ``authorizerAppId``.
            APIError: The platform refused (a spent or unknown code); TransportError as usual.
        """
        now = self._clock()
        tokens = await self._with_component(
            lambda token: self._auth.authorizer_tokens(token, authorization_code)
        )
        app_id = tokens.authorizer_app_id
        if not app_id:
            raise ResponseValidationError(
                "the authorizer tokens name no authorizerAppId",
                errors=["missing @ $.authorizerAppId"],
                endpoint="authorizer_access_token",
            )
        await self._save_authorizer(app_id, tokens, now)
        logger.info(
            "authorizer authorized app_id=%s permissions=%d",
            app_id,
            len(tokens.authorize_permission),
        )
        return tokens

    # -- the TokenProvider protocol --------------------------------------------------------------

    async def get_token(self, app_id: str) -> str:
        """A live access token for the authorizer ``app_id``, renewed when due or missing.

        Raises:
            InvalidInputError: ``app_id`` is empty.
            RefreshTokenExpiredError: The authorization lapsed; the mini-program must authorize
                again.
            LockTimeoutError: Another process's renewal took longer than ``lock_timeout``.
            TokenStorageError: The storage failed.
            APIError: The platform refused the renewal; TransportError as usual.
        """
        if not isinstance(app_id, str) or not app_id:
            raise InvalidInputError("app id must be a non-empty string")
        return await self._fresh(
            app_id,
            lambda: self._storage.load_access_token(self._cid, app_id),
            lambda: self._renew_authorizer(app_id),
        )

    async def invalidate(self, app_id: str, token: str) -> None:
        """Forget ``token`` if it is still ``app_id``'s current token (compare-and-invalidate).

        A token another worker already replaced stays replaced: the next :meth:`get_token`
        returns the replacement without a second renewal.

        Raises:
            TokenStorageError: The storage failed.
        """
        if await self._storage.invalidate_access_token(self._cid, app_id, token):
            logger.info("authorizer token invalidated app_id=%s", app_id)

    # -- internals -------------------------------------------------------------------------------

    def _stamp(self, value: str, expires_in: int, now: float) -> StoredToken:
        lifetime = max(float(expires_in), 0.0)
        ahead = self._refresh_before + self._random.uniform(0.0, self._jitter)
        return StoredToken(value, now + lifetime, now + max(lifetime - ahead, lifetime / 2))

    async def _fresh(
        self,
        app_id: str | None,
        load: Callable[[], Awaitable[StoredToken | None]],
        renew: Callable[[], Awaitable[str]],
    ) -> str:
        current = await load()
        if current is not None:
            now = self._clock()
            if not current.due(now) or (
                not current.expired(now)
                and (self._locks.locked(app_id) or self._resting(app_id, current, now))
            ):
                return current.value  # fresh, being renewed here, or its renewal just failed
        with self._locks.hold(app_id) as lock:
            async with lock:
                # Whoever held the lock before us may have renewed it.
                current = await load()
                now = self._clock()
                if current is not None and not current.due(now):
                    return current.value
                if current is None or current.expired(now):
                    # Nothing usable: wait for whoever renews it, or renew it ourselves.
                    try:
                        async with self._storage.lock(
                            self._cid, app_id, ttl=self._lock_ttl, timeout=self._lock_timeout
                        ):
                            value = await self._renew_unless_done(load, renew)
                    except LockTimeoutError as exc:
                        exc.app_id = exc.app_id or app_id
                        raise
                    self._early_failures.pop(app_id, None)
                    return value
                usable = current
                try:
                    # Due but still valid: renew only if no other process is at it.
                    async with self._storage.lock(self._cid, app_id, ttl=self._lock_ttl, timeout=0):
                        value = await self._renew_unless_done(load, renew)
                except LockTimeoutError:
                    return usable.value  # another process is renewing it
                except KuaishouError as exc:
                    if isinstance(exc, InvalidInputError):
                        raise
                    failure = exc
                else:
                    self._early_failures.pop(app_id, None)
                    return value
        self._early_failed(app_id, usable, failure)
        return usable.value

    def _resting(self, app_id: str | None, current: StoredToken, now: float) -> bool:
        failed = self._early_failures.get(app_id)
        return failed is not None and failed[0] == current.expires_at and now < failed[1]

    def _early_failed(self, app_id: str | None, usable: StoredToken, failure: Exception) -> None:
        again = self._early_failures.get(app_id, (None, 0.0))[0] == usable.expires_at
        self._early_failures[app_id] = (usable.expires_at, self._clock() + _EARLY_RETRY_GAP)
        logger.log(
            logging.INFO if again else logging.WARNING,
            "renewing the %s token ahead of expiry failed (%s)%s; using the current one "
            "until it expires app_id=%s",
            "component" if app_id is None else "authorizer",
            type(failure).__name__,
            " again" if again else "",
            app_id or "-",
        )

    async def _renew_unless_done(
        self,
        load: Callable[[], Awaitable[StoredToken | None]],
        renew: Callable[[], Awaitable[str]],
    ) -> str:
        # Another process may have renewed it while we waited for the lock.
        current = await load()
        if current is not None and not current.due(self._clock()):
            return current.value
        return await renew()

    async def _renew_component(self) -> str:
        ticket = await self._storage.load_ticket(self._cid)
        if ticket is None:
            raise TokenUnavailableError(
                "no component ticket yet: hand the pushed ticket to TokenManager.set_ticket"
            )
        now = self._clock()
        answer = await self._auth.component_access_token(ticket)
        stored = self._stamp(answer.component_access_token, answer.expires_in, now)
        await self._storage.save_component_token(self._cid, stored)
        logger.info(
            "component token renewed component_app_id=%s expires_in=%d",
            self._cid,
            answer.expires_in,
        )
        return stored.value

    async def _with_component(self, call: Callable[[str], Awaitable[T]]) -> T:
        """Call with the component token; on 100200108 invalidate it and retry once."""
        token = await self.get_component_token()
        try:
            return await call(token)
        except TokenExpiredError:
            pass
        await self.invalidate_component_token(token)
        return await call(await self.get_component_token())

    async def _renew_authorizer(self, app_id: str) -> str:
        now = self._clock()  # before the call: the token's lifetime starts no later
        if self._refresh is not None:
            stored = await self._storage.load_refresh_token(self._cid, app_id)
            tokens = await self._refresh(app_id, stored.value if stored is not None else None)
            if not isinstance(tokens, AuthorizerTokens) or not tokens.authorizer_access_token:
                raise TokenUnavailableError(
                    "the refresh function returned no AuthorizerTokens with an access token",
                    app_id=app_id,
                )
        else:
            code = await self._with_component(
                lambda token: self._auth.recover_authorization_code(token, app_id)
            )
            tokens = await self._with_component(
                lambda token: self._auth.authorizer_tokens(
                    token, code.authorization_code, authorized_app_id=app_id
                )
            )
        if tokens.authorizer_app_id and tokens.authorizer_app_id != app_id:
            raise ResponseValidationError(
                "the renewed tokens belong to another authorizer",
                errors=["unexpected value @ $.authorizerAppId"],
                endpoint="authorizer_access_token",
                app_id=app_id,
            )
        stored = await self._save_authorizer(app_id, tokens, now)
        logger.info("authorizer token renewed app_id=%s expires_in=%d", app_id, tokens.expires_in)
        return stored.value

    async def _save_authorizer(
        self, app_id: str, tokens: AuthorizerTokens, now: float
    ) -> StoredToken:
        access = self._stamp(tokens.authorizer_access_token, tokens.expires_in, now)
        refresh = None
        if tokens.authorizer_refresh_token:
            refresh = StoredToken(
                tokens.authorizer_refresh_token, now + max(tokens.refresh_expires_in, 0)
            )
        await self._storage.save_authorizer_tokens(self._cid, app_id, access, refresh)
        return access
