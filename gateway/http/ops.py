"""Operational endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import AuthenticationFailed
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
    token = runtime.config.metrics.token

    async def metrics(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
                err = AuthenticationFailed("A valid metrics token is required.")
                return JSONResponse(err.to_body(), status_code=err.status)
        return Response(exposition(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
