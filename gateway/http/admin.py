"""The admin API: create, list and revoke API keys; read a key's spend.

Every route is behind the admin-key check of gateway/http/admin_auth.py (403 while no
`auth.admin_key` is configured). A created key is returned once, in the creation answer.
"""

from __future__ import annotations

import re

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.accounting.budgets import SpendStore
from gateway.accounting.teams import team_policies
from gateway.auth.keys import KeyExists, KeyStore
from gateway.config.access import KEY_ID, KeyPolicy
from gateway.errors import InvalidRequest, ResourceNotFound
from gateway.http.admin_auth import Handler, admin_only, authenticator
from gateway.http.request import read_body
from gateway.runtime import Runtime

__all__ = ["AdminApi", "Handler", "admin_routes"]
MAX_ADMIN_BODY_BYTES = 64 * 1024  # a key's policy; larger bodies get 413


def admin_routes(runtime: Runtime) -> list[Route]:
    """Always routed: whether an admin key is set is decided per request (reloadable)."""
    api = AdminApi(runtime)
    return [
        Route("/admin/keys", api.guard(api.create), methods=["POST"]),
        Route("/admin/keys", api.guard(api.list), methods=["GET"]),
        Route("/admin/keys/{key_id}", api.guard(api.revoke), methods=["DELETE"]),
        Route("/admin/keys/{key_id}/usage", api.guard(api.usage), methods=["GET"]),
    ]


class AdminApi:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def keys(self) -> KeyStore:
        return authenticator(self.runtime).keys

    def spend(self) -> SpendStore:
        services = self.runtime.services
        assert services is not None
        stored = services.records.teams if services.records else None
        return SpendStore(services.state, team_policies(self.runtime.config, stored))

    def guard(self, handler: Handler) -> Handler:
        return admin_only(self.runtime, handler)

    async def create(self, request: Request) -> Response:
        try:
            data = orjson.loads(await read_body(request, MAX_ADMIN_BODY_BYTES) or b"{}")
        except orjson.JSONDecodeError:
            raise InvalidRequest("The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        key_id = data.pop("id", None)
        if key_id is not None and not (isinstance(key_id, str) and _valid_id(key_id)):
            raise InvalidRequest("'id' must be 1-64 characters of A-Z a-z 0-9 . _ : -", param="id")
        try:
            policy = KeyPolicy.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise InvalidRequest(f"{where}: {first['msg']}", param=where) from None
        try:
            key, record = await self.keys().create(key_id, policy)
        except KeyExists:
            raise InvalidRequest(f"A key with id '{key_id}' exists.", code="key_exists") from None
        return JSONResponse({"key": key, **record.public()}, status_code=201)

    async def list(self, request: Request) -> Response:
        records = await self.keys().records()
        return JSONResponse({"object": "list", "data": [r.public() for r in records]})

    async def revoke(self, request: Request) -> Response:
        key_id = request.path_params["key_id"]
        store = self.keys()
        if key_id in store.static_records:
            raise InvalidRequest(
                f"The key '{key_id}' is defined in the config file; remove it there.",
                code="key_in_config",
            )
        if not await store.revoke(key_id):
            raise ResourceNotFound(f"No key with id '{key_id}'.", code="key_not_found")
        return JSONResponse({"id": key_id, "deleted": True})

    async def usage(self, request: Request) -> Response:
        key_id = request.path_params["key_id"]
        record = await self.keys().record(key_id)
        if record is None:
            raise ResourceNotFound(f"No key with id '{key_id}'.", code="key_not_found")
        spend = self.spend()
        body: dict[str, object] = {
            "id": key_id,
            "usage": await spend.usage("key", key_id),
            "budget": record.policy.budget.model_dump(exclude_none=True),
        }
        team = record.policy.team
        if team:
            body["team"] = {"name": team, "usage": await spend.usage("team", team)}
        return JSONResponse(body)


def _valid_id(key_id: str) -> bool:
    return re.fullmatch(KEY_ID, key_id) is not None
