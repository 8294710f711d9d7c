"""Everything the SDK raises, and the table that maps platform result codes to classes.

The hierarchy::

    KuaishouError
    ├── APIError                     the platform answered with ``result != 1``
    │   ├── DomainNotFoundError      403106
    │   ├── BadRequestError          100200100, 1026
    │   ├── AuthError                100200101, 100200102
    │   │   ├── TokenExpiredError    100200108
    │   │   └── RefreshTokenExpiredError  100200113
    │   ├── RateLimitedError         400002, 100100402
    │   └── ServerError              100200500, 400003
    ├── TransportError               the answer never arrived as a JSON result
    │   └── RequestTimeoutError      connect or total timeout, or the call's deadline
    ├── ResponseValidationError      JSON arrived but does not fit the model
    ├── PlatformUnavailableError     the platform is down: not sent (outage circuit open)
    ├── TokenUnavailableError        no token for the app id, and no way to get one
    │   ├── LockTimeoutError         another holder kept the refresh lock too long
    │   └── TokenStorageError        the token storage failed (Redis unreachable, ...)
    ├── LimiterUnavailableError      the shared limiter cannot reach Redis (fallback="fail")
    ├── InvalidInputError            (also a ValueError) refused before sending
    ├── InvalidPushError             a pushed message that cannot be verified or read
    └── ClientClosedError            (also a RuntimeError) the client was closed

No message built here ever contains an access token: errors carry the endpoint name and the
authorizer's app id, never the URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "DEFAULT_ERROR_CODES",
    "APIError",
    "AuthError",
    "BadRequestError",
    "ClientClosedError",
    "DomainNotFoundError",
    "InvalidInputError",
    "InvalidPushError",
    "KuaishouError",
    "LimiterUnavailableError",
    "LockTimeoutError",
    "PlatformUnavailableError",
    "RateLimitedError",
    "RefreshTokenExpiredError",
    "RequestTimeoutError",
    "ResponseValidationError",
    "ServerError",
    "TokenExpiredError",
    "TokenStorageError",
    "TokenUnavailableError",
    "TransportError",
    "error_class_for",
]


class KuaishouError(Exception):
    """Base class of every exception this SDK raises.

    ``str(error)`` is the message followed by the endpoint and app id, when known. Errors
    pickle (for multiprocessing and task queues), and no message ever holds an access token.

    Args:
        message: What went wrong.
        endpoint: The endpoint name, if the error concerns a call.
        app_id: The authorizer's app id, if the error concerns one.

    Attributes:
        message: What went wrong, without the endpoint and app id.
        endpoint: The endpoint name (``"app_info"``, ``"server_domain"``, ...) or ``None``.
        app_id: The authorizer's app id the call was made for, or ``None``.
    """

    endpoint: str | None
    app_id: str | None

    def __init__(
        self, message: str, *, endpoint: str | None = None, app_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.app_id = app_id

    def __str__(self) -> str:
        where = [f"{k}={v}" for k, v in (("endpoint", self.endpoint), ("app_id", self.app_id)) if v]
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructors do not pickle by default; workers in other processes need to.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[KuaishouError], state: dict[str, object]) -> KuaishouError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class APIError(KuaishouError):
    """The platform answered, with ``result != 1``.

    The subclass raised is chosen by ``code`` from :data:`DEFAULT_ERROR_CODES` and the client's
    ``error_codes``; an unknown code raises a plain ``APIError``. ``str(error)`` starts with
    ``[code]``.

    Args:
        message: The platform's message.
        code: The platform's result code.
        http_status: The HTTP status of the answer.
        endpoint: The endpoint name.
        app_id: The authorizer's app id.

    Attributes:
        code: The platform's result code.
        message: The platform's ``error_msg`` (or ``errorMsg``); may be empty.
        http_status: The HTTP status of the answer (the platform uses 200 for most errors).
    """

    code: int
    http_status: int

    def __init__(
        self,
        message: str,
        *,
        code: int,
        http_status: int = 200,
        endpoint: str | None = None,
        app_id: str | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, app_id=app_id)
        self.code = code
        self.http_status = http_status

    def __str__(self) -> str:
        return f"[{self.code}] {super().__str__()}"


class DomainNotFoundError(APIError):
    """403106: a domain to delete is not configured for this mini-program."""


class BadRequestError(APIError):
    """100200100 or 1026: missing or malformed parameters, or an unknown path."""


class AuthError(APIError):
    """The platform refused the credentials (100200101 invalid client, 100200102 refused token)."""


class TokenExpiredError(AuthError):
    """100200108: the access token expired. With a token provider it is refreshed once."""


class RefreshTokenExpiredError(AuthError):
    """100200113: the refresh token expired; the mini-program must authorize again."""


class RateLimitedError(APIError):
    """400002 or 100100402: the platform throttled the call. Retried; the limiter slows down."""


class ServerError(APIError):
    """100200500 or 400003: the platform failed internally. Retried."""


class TransportError(KuaishouError):
    """The answer never arrived as a JSON result.

    Connection failures, timeouts, HTTP error statuses without a JSON result, bodies that are not
    JSON or are too large. Retried by default.

    Args:
        message: What went wrong.
        status: The HTTP status, when a response arrived.
        body_excerpt: A short, scrubbed excerpt of the body, when one arrived.
        request_sent: Whether the request may have reached the server (see below).
        endpoint: The endpoint name.
        app_id: The authorizer's app id.

    Attributes:
        status: The HTTP status when a response arrived, else ``None``.
        body_excerpt: A short, scrubbed excerpt of the body when one arrived, else ``None``.
        request_sent: ``False`` when the request certainly never reached the server (the
            connection could not be opened); ``True`` or ``None`` when it may have.
    """

    status: int | None
    body_excerpt: str | None
    request_sent: bool | None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body_excerpt: str | None = None,
        request_sent: bool | None = None,
        endpoint: str | None = None,
        app_id: str | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, app_id=app_id)
        self.status = status
        self.body_excerpt = body_excerpt
        self.request_sent = request_sent

    def __str__(self) -> str:
        text = super().__str__()
        if self.status is not None:
            text = f"HTTP {self.status}: {text}"
        if self.body_excerpt:
            text = f"{text}; body starts {self.body_excerpt!r}"
        return text


class RequestTimeoutError(TransportError):
    """The connect or total timeout, or the call's overall deadline, ran out."""


class ResponseValidationError(KuaishouError):
    """A JSON answer arrived but does not fit the expected shape.

    The message lists the first five problems.

    Args:
        message: What did not fit.
        errors: One line per problem.
        endpoint: The endpoint name.
        app_id: The authorizer's app id.

    Attributes:
        errors: One line per problem, each naming the field path (``$.app_category[0].status``).
    """

    errors: tuple[str, ...]

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[str] = (),
        endpoint: str | None = None,
        app_id: str | None = None,
    ) -> None:
        self.errors = tuple(errors)
        if self.errors:
            message = f"{message}: {'; '.join(self.errors[:5])}"
            if len(self.errors) > 5:
                message += f"; and {len(self.errors) - 5} more"
        super().__init__(message, endpoint=endpoint, app_id=app_id)


class PlatformUnavailableError(KuaishouError):
    """The platform is down: the call was not sent, it failed fast.

    Raised while the client's outage circuit is open, that is after most recent calls, for
    many distinct authorizers, failed with transient errors. A probe call goes through every
    few seconds and the first success lets calls through again.

    Args:
        message: What happened.
        retry_after: Seconds until the next probe may go, when known.
        endpoint: The endpoint name.
        app_id: The authorizer's app id.

    Attributes:
        retry_after: Seconds until the next probe may go, or ``None``.
    """

    retry_after: float | None

    def __init__(
        self,
        message: str = "the platform is unavailable (outage circuit open); the call was not sent",
        *,
        retry_after: float | None = None,
        endpoint: str | None = None,
        app_id: str | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, app_id=app_id)
        self.retry_after = retry_after


class TokenUnavailableError(KuaishouError):
    """The token provider has no token for this app id and no way to get one."""


class LockTimeoutError(TokenUnavailableError):
    """Another task or process held the refresh lock for longer than the manager waits."""


class TokenStorageError(TokenUnavailableError):
    """The token storage failed (Redis unreachable, timed out or answered an error)."""


class LimiterUnavailableError(KuaishouError):
    """The shared limiter could not reach Redis and its policy is ``fallback="fail"``.

    Raised by :meth:`RedisLimiter.acquire <kuaishou_mp.redis.RedisLimiter.acquire>` instead of
    letting a call go unlimited; the call is not sent. Retrying later (after
    ``probe_interval``) tries Redis again.
    """


class InvalidInputError(KuaishouError, ValueError):
    """An argument was refused before anything was sent; the message says which value and why."""


class InvalidPushError(KuaishouError):
    """A pushed message (ticket or event) that cannot be decrypted or read.

    The message says what was wrong (bad base64, a bad key, bad padding, not UTF-8, not JSON),
    never the content, the key or the ticket.
    """


class ClientClosedError(KuaishouError, RuntimeError):
    """The :class:`~kuaishou_mp.Client` was closed; create a new one."""


DEFAULT_ERROR_CODES: Mapping[int, type[APIError]] = {
    403106: DomainNotFoundError,
    100200100: BadRequestError,
    1026: BadRequestError,
    100200101: AuthError,
    100200102: AuthError,
    100200108: TokenExpiredError,
    100200113: RefreshTokenExpiredError,
    400002: RateLimitedError,
    100100402: RateLimitedError,
    100200500: ServerError,
    400003: ServerError,
}
"""The platform result codes we know, and the class each raises. Unknown codes raise
:class:`APIError`. Pass ``error_codes={code: cls}`` to :class:`~kuaishou_mp.Client` to add or
override entries without patching the package."""


def error_class_for(code: int, table: Mapping[int, type[APIError]] | None = None) -> type[APIError]:
    """Return the exception class for a platform result code (``APIError`` when unknown).

    Args:
        code: The platform's result code.
        table: The code-to-class table to look in; :data:`DEFAULT_ERROR_CODES` by default.

    Returns:
        The :class:`APIError` subclass for ``code``, or ``APIError`` itself.
    """
    return (DEFAULT_ERROR_CODES if table is None else table).get(code, APIError)
