"""GET /v1/models (the aliases and routes a caller may use) and GET /v1/models/{id}.

With keys configured it needs a valid key, checked by the auth stage's own code (per-IP
limits, failed attempts counted, expiry), and lists only what that key may use (as
OpenAI's endpoint does). In the quickstart (no keys) it stays open and lists everything.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth.keys import KeyStore
from gateway.auth.principal import ANONYMOUS, Principal
from gateway.context import RequestContext
from gateway.errors import GatewayError, ModelNotFound
from gateway.http.admin_auth import Handler
from gateway.http.openai import request_id
from gateway.pipeline.access import build_limiter
from gateway.pipeline.auth import Auth
from gateway.runtime import Runtime


class ModelsAuth:
    """The auth stage's key check, rebuilt whenever a reload swaps the config or services."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._built: tuple[object, object, Auth] | None = None

    def auth(self) -> Auth:
        config, services = self.runtime.config, self.runtime.services
        assert services is not None
        built = self._built
        if built is None or built[0] is not config or built[1] is not services:
            limiter = services.limiter or build_limiter(config, services.metrics)
            keys = KeyStore(config.auth, services.state)
            auth = Auth(config.auth, config.limits, keys, limiter, services.metrics)
            self._built = (config, services, auth)
        return self._built[2]

    async def principal(self, request: Request) -> Principal:
        if not self.runtime.config.auth.enabled:
            return ANONYMOUS
        ctx = RequestContext(
            request_id=request_id(request),
            endpoint="chat",  # unused by the key check
            body={},
            headers=dict(request.headers),
            client_ip=request.client.host if request.client else "",
        )
        auth = self.auth()
        await auth.admit(ctx)
        return await auth.identify(ctx)


def models_endpoint(runtime: Runtime) -> Handler:
    check = ModelsAuth(runtime)

    async def models(request: Request) -> Response:
        try:
            principal = await check.principal(request)
        except GatewayError as err:
            return JSONResponse(err.to_body(), status_code=err.http_status, headers=err.headers)
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
    check = ModelsAuth(runtime)

    async def model(request: Request) -> Response:
        try:
            principal = await check.principal(request)
            alias = request.path_params["model"]
            configured = alias in runtime.config.models or alias in runtime.config.routes
            if not (configured and principal.may_use(alias)):
                raise ModelNotFound(alias)
        except GatewayError as err:
            return JSONResponse(err.to_body(), status_code=err.http_status, headers=err.headers)
        return JSONResponse(model_entry(alias, runtime))

    return model


def model_entry(alias: str, runtime: Runtime) -> dict[str, object]:
    return {
        "id": alias,
        "object": "model",
        "created": int(runtime.started_at),
        "owned_by": "gateway",
    }
