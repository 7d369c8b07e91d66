"""The gateway's error tree, mapped to HTTP in one place (`to_body`).

GatewayError                      500 api_error
├── InvalidRequest                400 invalid_request_error
│   ├── BodyTooLarge              413
│   ├── ModelNotFound             404 (code model_not_found)
│   ├── ResourceNotFound          404 (code not_found): a stored object the key cannot see,
│   │                                 a key, team or feature (ledger) that is not there
│   ├── Conflict                  409 the object is defined elsewhere (a team in the config)
│   ├── InputTooLarge             400 (code context_length_exceeded)
│   ├── HeadersTooLarge           431 (connection_guard: request head over its limit)
│   └── RequestTimeout            408 (connection_guard: head or body too slow)
├── ClientDisconnected            499 client_closed_request (client left; upstream cut)
├── AuthenticationFailed          401 authentication_error
├── PermissionDenied              403 permission_error
├── RateLimited                   429 rate_limit_error (Retry-After)
├── QuotaExceeded                 429 insufficient_quota
├── Unavailable                   503 the gateway cannot serve this now (Retry-After)
│   ├── DatabaseUnavailable       503 state.database unreachable (admin reads)
│   ├── LimiterUnavailable        503 limits fail closed and Redis is unreachable
│   ├── LimiterBusy               503 every pooled Redis connection stayed busy (overload)
│   ├── ServerAtCapacity          503 server_overloaded (connection cap, nothing idle)
│   ├── StoreUnavailable          503 the state backend holding stored objects is down
│   ├── StateUnavailable          503 the state backend failed (feedback, reports)
│   └── ShuttingDown              503 a stream ended by the shutdown grace period
├── UpstreamError                 502 upstream_error: the provider answered with an error
│   ├── UpstreamUnavailable       502 connection refused / reset
│   └── UpstreamTimeout           504 timeout (code stream_deadline_exceeded: a stream's
│                                     retry.stream_deadline_seconds passed)
└── AllAttemptsFailed             the status of the last attempt; names every attempt

Messages are written for clients: they never carry secrets, tracebacks or upstream URLs.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar


class GatewayError(Exception):
    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    log_level: ClassVar[int] = logging.ERROR

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}

    @property
    def http_status(self) -> int:
        return self.status

    def to_body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"
    log_level = logging.INFO


class BodyTooLarge(InvalidRequest):
    status = 413


class ModelNotFound(InvalidRequest):
    status = 404

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        )


class ResourceNotFound(InvalidRequest):
    status = 404

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "not_found")
        super().__init__(message, **kwargs)


class Conflict(InvalidRequest):
    status = 409


class InputTooLarge(InvalidRequest):
    pass


class HeadersTooLarge(InvalidRequest):
    status = 431


class RequestTimeout(InvalidRequest):
    status = 408


class ClientDisconnected(GatewayError):
    """The client left before its reply was ready; the upstream call was cut (nginx's 499)."""

    status = 499
    error_type = "client_closed_request"
    log_level = logging.INFO


class AuthenticationFailed(GatewayError):
    status = 401
    error_type = "authentication_error"
    log_level = logging.INFO


class PermissionDenied(GatewayError):
    status = 403
    error_type = "permission_error"
    log_level = logging.INFO


class RateLimited(GatewayError):
    status = 429
    error_type = "rate_limit_error"
    log_level = logging.INFO


class QuotaExceeded(GatewayError):
    status = 429
    error_type = "insufficient_quota"
    log_level = logging.INFO

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "insufficient_quota")
        super().__init__(message, **kwargs)


class Unavailable(GatewayError):
    """The gateway cannot serve this request now (state unreachable, shutting down)."""

    status = 503
    error_type = "server_error"
    log_level = logging.WARNING


class ShuttingDown(Unavailable):
    pass


class ServerAtCapacity(Unavailable):
    """Every connection slot is busy with a request (see gateway/connection_guard.py)."""

    error_type = "server_overloaded"


class LimiterUnavailable(Unavailable):
    """Redis is unreachable and limits are configured to fail closed."""

    error_type = "api_error"


class LimiterBusy(Unavailable):
    """Every pooled Redis connection stayed busy for the pool timeout: overload."""

    error_type = "api_error"


class StateUnavailable(Unavailable):
    error_type = "api_error"


class DatabaseUnavailable(Unavailable):
    """The system of record (state.database) cannot be reached for a read that needs it."""

    error_type = "api_error"


class StoreUnavailable(Unavailable):
    error_type = "service_unavailable"


class UpstreamError(GatewayError):
    """The provider answered with an error status; `upstream_status` keeps it."""

    status = 502
    error_type = "upstream_error"
    log_level = logging.WARNING

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status
        self.retryable = retryable
        self.retry_after = retry_after
        if retry_after is not None and upstream_status in (429, 503):
            self.headers.setdefault("retry-after", str(math.ceil(retry_after)))

    @property
    def http_status(self) -> int:
        # Client errors from the provider (400, 404, 422, 429 …) pass through as they are;
        # provider failures become 502 so clients can tell the gateway from the model.
        if self.upstream_status is not None and 400 <= self.upstream_status < 500:
            return self.upstream_status
        return self.status


class UpstreamUnavailable(UpstreamError):
    status = 502


class UpstreamTimeout(UpstreamError):
    status = 504
    error_type = "timeout"


class AllAttemptsFailed(GatewayError):
    """Every deployment (and fallback) failed; the message names each attempt."""

    log_level = logging.WARNING

    def __init__(self, attempts: list[tuple[str, GatewayError]]) -> None:
        self.attempts = attempts
        detail = "; ".join(f"{name}: {err.message}" for name, err in attempts)
        last = attempts[-1][1]
        super().__init__(
            f"All {len(attempts)} attempt(s) failed: {detail}",
            code=last.code or "upstream_failed",
            headers=last.headers,
        )
        self.error_type = last.error_type  # type: ignore[misc]
        self._status = last.http_status

    @property
    def http_status(self) -> int:
        return self._status
