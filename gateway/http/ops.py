"""Operational endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth.authenticator import presented_key, same_secret
from gateway.errors import AuthenticationFailed, GatewayError, InvalidRequest
from gateway.observability.multiprocess import exposition
from gateway.runtime import Runtime

Handler = Callable[[Request], Awaitable[Response]]


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def ready_endpoint(runtime: Runtime) -> Handler:
    async def ready(request: Request) -> Response:
        ok, checks = await runtime.readiness()
        status = "degraded" if ok and checks.get("degraded") else ("ready" if ok else "unready")
        return JSONResponse({"status": status, "checks": checks}, status_code=200 if ok else 503)

    return ready


def metrics_endpoint(runtime: Runtime) -> Handler:
    """Reads `metrics.enabled` and `metrics.token` per request: a reload changes them."""

    async def metrics(request: Request) -> Response:
        settings = runtime.config.metrics
        if not settings.enabled:
            err: GatewayError = InvalidRequest("Unknown path.", code="not_found")
            return JSONResponse(err.to_body(), status_code=404)
        token = settings.token
        if token is not None and not same_secret(
            presented_key(request.headers), token.get_secret_value()
        ):
            err = AuthenticationFailed("A valid metrics token is required.")
            return JSONResponse(err.to_body(), status_code=err.status)
        return Response(exposition(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
