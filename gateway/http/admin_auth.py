"""The admin-key check shared by /admin endpoints: `Authorization: Bearer <auth.admin_key>`."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.config.schema import GatewayConfig
from gateway.errors import AuthenticationFailed, GatewayError, PermissionDenied


def admin_refusal(request: Request, config: GatewayConfig) -> Response | None:
    """None when the request carries the admin key, else the OpenAI-style error to send."""
    key = config.auth.admin_key
    err: GatewayError | None = None
    if key is None:
        err = PermissionDenied("The admin API is off: set auth.admin_key to enable it.")
    else:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), key.get_secret_value().encode()):
            err = AuthenticationFailed("A valid admin key is required.")
    if err is None:
        return None
    return JSONResponse(err.to_body(), status_code=err.http_status)
