"""GET /v1/models (the aliases and routes a caller may use) and GET /v1/models/{id}.

With keys configured it needs a valid key, checked by the generation's Authenticator (per-IP
limits, failed attempts counted, expiry), and lists only what that key may use (as
OpenAI's endpoint does). In the quickstart (no keys) it stays open and lists everything.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import GatewayError, ModelNotFound
from gateway.http.admin_auth import Handler, caller, error_response
from gateway.runtime import Runtime


def models_endpoint(runtime: Runtime) -> Handler:
    async def models(request: Request) -> Response:
        try:
            principal = await caller(runtime, request)
        except GatewayError as err:
            return error_response(err)
        data = [
            model_entry(alias, runtime)
            for alias in (*runtime.config.models, *runtime.config.routes)
            if principal.may_use(alias)
        ]
        return JSONResponse({"object": "list", "data": data})

    return models


def model_endpoint(runtime: Runtime) -> Handler:
    """One alias or route (the openai SDK's `models.retrieve`); an unknown one and one the
    key may not use get the same 404, so a key cannot probe for aliases it is denied."""

    async def model(request: Request) -> Response:
        try:
            principal = await caller(runtime, request)
            alias = request.path_params["model"]
            configured = alias in runtime.config.models or alias in runtime.config.routes
            if not (configured and principal.may_use(alias)):
                raise ModelNotFound(alias)
        except GatewayError as err:
            return error_response(err)
        return JSONResponse(model_entry(alias, runtime))

    return model


def model_entry(alias: str, runtime: Runtime) -> dict[str, object]:
    return {
        "id": alias,
        "object": "model",
        "created": int(runtime.started_at),
        "owned_by": "gateway",
    }
