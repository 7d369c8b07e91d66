"""Authentication for the HTTP handlers outside the pipeline, by the running generation's
Authenticator (the pipeline's own): the admin-key check of every /admin endpoint, and the
API-key check of /v1/models and /v1/feedback.

Reading the Authenticator per request means a reload that adds (or removes) the admin key
turns the admin API on (or off) without a restart. No admin key configured: 403
`admin_disabled` on every admin endpoint. Wrong, unknown or missing key: one identical 401
`invalid_admin_key`, counted toward the client IP's failed-authentication limit (429 past
it). Keys are compared in constant time and never echoed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth.authenticator import Authenticator
from gateway.auth.principal import Principal
from gateway.errors import GatewayError
from gateway.runtime import Runtime

Handler = Callable[[Request], Awaitable[Response]]


def authenticator(runtime: Runtime) -> Authenticator:
    services = runtime.services
    assert services is not None and services.authenticator is not None
    return services.authenticator


async def admitted_ip(auth: Authenticator, request: Request) -> str:
    """The client's IP (trusted proxies believed), after its per-IP request limits."""
    peer = request.client.host if request.client else ""
    ip = auth.client_ip(peer, request.headers)
    await auth.admit(ip)
    return ip


async def caller(runtime: Runtime, request: Request) -> Principal:
    """The API key's principal (ANONYMOUS without keys); 401/429 as the pipeline answers."""
    auth = authenticator(runtime)
    return await auth.principal(request.headers, await admitted_ip(auth, request))


async def check_admin(runtime: Runtime, request: Request) -> None:
    """Return when the request bears the configured admin key, else raise the error to send."""
    auth = authenticator(runtime)
    await auth.admin(request.headers, await admitted_ip(auth, request))


def error_response(err: GatewayError) -> Response:
    return JSONResponse(err.to_body(), status_code=err.http_status, headers=err.headers)


def admin_only(runtime: Runtime, handler: Handler) -> Handler:
    """`handler` behind check_admin; a GatewayError it raises becomes its OpenAI error."""

    async def guarded(request: Request) -> Response:
        try:
            await check_admin(runtime, request)
            return await handler(request)
        except GatewayError as err:
            return error_response(err)

    return guarded
