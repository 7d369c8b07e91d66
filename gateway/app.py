"""create_app(config): routes, error mapping and the lifespan that owns every client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config.schema import GatewayConfig
from gateway.errors import GatewayError, InvalidRequest
from gateway.http import admin, experiments
from gateway.http.hot_paths import HotPaths
from gateway.http.messages import messages_endpoints
from gateway.http.models import model_endpoint, models_endpoint
from gateway.http.openai import CompletionEndpoint
from gateway.http.ops import health, metrics_endpoint, ready_endpoint
from gateway.http.responses import ResponsesAPI
from gateway.http.teams import team_routes
from gateway.http.usage import usage_routes
from gateway.observability.metrics import Metrics
from gateway.reload import Reloader, reload_endpoint
from gateway.runtime import Runtime
from gateway.shutdown import drain_on_signals

# litellm, when a config uses it, must never fetch its price map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def create_app(
    config: GatewayConfig, metrics: Metrics | None = None, *, config_path: str | None = None
) -> Starlette:
    runtime = Runtime(config, metrics)
    reloader = Reloader(runtime, config_path)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        reloader.start()
        drain_on_signals(runtime)
        try:
            yield
        finally:
            await reloader.stop()
            await runtime.stop()

    responses = ResponsesAPI(runtime)
    hot = {
        "/v1/chat/completions": CompletionEndpoint(runtime, "chat"),
        "/v1/completions": CompletionEndpoint(runtime, "completions"),
        "/v1/embeddings": CompletionEndpoint(runtime, "embeddings"),
        "/v1/responses": responses,
        **messages_endpoints(runtime),  # Anthropic Messages: /v1/messages, count_tokens
    }
    routes = [
        *(Route(path, endpoint, methods=["POST"]) for path, endpoint in hot.items()),
        *responses.routes(),  # GET, DELETE /v1/responses/{id}, its input_items
        Route("/v1/models", models_endpoint(runtime), methods=["GET"]),
        Route("/v1/models/{model:path}", model_endpoint(runtime), methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready_endpoint(runtime), methods=["GET"]),
        Route("/admin/reload", reload_endpoint(reloader), methods=["POST"]),
        *experiments.routes(runtime),  # route dry-run, feedback, experiment reports
        *admin.admin_routes(runtime),  # /admin/keys (403 while no auth.admin_key is set)
        Route("/metrics", metrics_endpoint(runtime), methods=["GET"]),  # 404 when disabled
        *usage_routes(runtime),  # /admin/usage from the PostgreSQL ledger
        *team_routes(runtime),  # /admin/teams: team policies in the database
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        middleware=[Middleware(HotPaths, endpoints=hot)],
    )
    # Starlette would answer '/path/' with a redirect built from the client's Host header.
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    return app


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    err = InvalidRequest(exc.detail or "Invalid request.")
    if exc.status_code == 404:
        # A fixed message: the path is attacker-controlled text, never reflected.
        err = InvalidRequest("Unknown path.", code="not_found")
    elif exc.status_code == 405:
        err = InvalidRequest("This method is not allowed here.", code="method_not_allowed")
    return JSONResponse(err.to_body(), status_code=exc.status_code, headers=exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    err = GatewayError("The gateway failed to handle this request.")
    return JSONResponse(err.to_body(), status_code=500)
