"""The one admin-key check of every /admin endpoint: `Authorization: Bearer <auth.admin_key>`.

It reads the running config per request, so an admin key added (or removed) by a config
reload turns the admin API on (or off) without a restart. No admin key configured: 403
`admin_disabled` on every admin endpoint. Wrong or missing key: 401 `invalid_admin_key`.
The key is compared in constant time and never echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.config.schema import GatewayConfig
from gateway.errors import AuthenticationFailed, GatewayError, PermissionDenied
from gateway.pipeline.auth import presented_key
from gateway.runtime import Runtime

Handler = Callable[[Request], Awaitable[Response]]


def check_admin(request: Request, config: GatewayConfig) -> None:
    """Return when the request bears the configured admin key, else raise the error to send."""
    secret = config.auth.admin_key
    if secret is None:
        raise PermissionDenied(
            "The admin API is disabled: set auth.admin_key to enable it.", code="admin_disabled"
        )
    given = (presented_key(dict(request.headers)) or "").encode()
    if not hmac.compare_digest(given, secret.get_secret_value().encode()):
        raise AuthenticationFailed("A valid admin key is required.", code="invalid_admin_key")


def admin_only(runtime: Runtime, handler: Handler) -> Handler:
    """`handler` behind check_admin; a GatewayError it raises becomes its OpenAI error."""

    async def guarded(request: Request) -> Response:
        try:
            check_admin(request, runtime.config)
            return await handler(request)
        except GatewayError as err:
            return JSONResponse(err.to_body(), status_code=err.http_status, headers=err.headers)

    return guarded
