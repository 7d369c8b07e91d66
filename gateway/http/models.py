"""GET /v1/models: the aliases and routes a caller may use.

With keys configured it needs a valid key, checked by the generation's Authenticator (per-IP
limits, failed attempts counted, expiry), and lists only what that key may use (as
OpenAI's endpoint does). In the quickstart (no keys) it stays open and lists everything.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import GatewayError
from gateway.http.admin_auth import Handler, caller, error_response
from gateway.runtime import Runtime


def models_endpoint(runtime: Runtime) -> Handler:
    async def models(request: Request) -> Response:
        try:
            principal = await caller(runtime, request)
        except GatewayError as err:
            return error_response(err)
        created = int(runtime.started_at)
        aliases = [*runtime.config.models, *runtime.config.routes]
        data = [
            {"id": alias, "object": "model", "created": created, "owned_by": "gateway"}
            for alias in aliases
            if principal.may_use(alias)
        ]
        return JSONResponse({"object": "list", "data": data})

    return models
