"""The Responses API: POST /v1/responses, GET and DELETE /v1/responses/{id} and
GET /v1/responses/{id}/input_items.

POST becomes the canonical request (gateway/ingress/responses) and runs the pipeline like
any chat request; the reply is rendered back as a Response or its events. Stored
responses are scoped to the key: the same lookup with another key finds nothing (404).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.context import RequestContext
from gateway.errors import GatewayError, InvalidRequest, ResourceNotFound, StoreUnavailable
from gateway.http.admin_auth import caller
from gateway.http.disconnect import DisconnectWatch
from gateway.http.openai import new_context
from gateway.http.reply import OPENAI, Renderer, ReplyResponse
from gateway.http.request import load_object, receive_body
from gateway.ingress.responses.ids import is_response_id
from gateway.ingress.responses.parse import canonical_body, check_request, input_items
from gateway.ingress.responses.render import Draft
from gateway.ingress.responses.reply import ResponsesRenderer, Turn
from gateway.ingress.responses.store import ResponseStore, StoredResponse, build_response_store
from gateway.providers.openai_responses import NativeRequest, native_request
from gateway.runtime import Runtime
from gateway.state import StateBackend

MAX_LIST = 100
T = TypeVar("T")
log = logging.getLogger("gateway")


class ResponsesAPI:
    """Every Responses route, sharing the key check and the store (rebuilt on reload)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._store: tuple[StateBackend, ResponseStore] | None = None
        self._any_native: tuple[object, bool] | None = None  # (config, any provider native)
        self._native: tuple[object, dict[str, bool]] = (None, {})  # (config, alias -> native)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/responses/{response_id}", self.retrieve, methods=["GET"]),
            Route("/v1/responses/{response_id}", self.delete, methods=["DELETE"]),
            Route("/v1/responses/{response_id}/input_items", self.input_items, methods=["GET"]),
        ]

    def store(self) -> ResponseStore:
        services = self.runtime.services
        assert services is not None
        if self._store is None or self._store[0] is not services.state:
            self._store = (services.state, build_response_store(services.state))
        return self._store[1]

    async def key_id(self, request: Request) -> str:
        """The presented key's id, checked as the auth stage checks it (401 otherwise)."""
        return (await caller(self.runtime, request)).key_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST /v1/responses (raw ASGI: the reply decides how it is sent)."""
        runtime = self.runtime
        assert runtime.handle is not None and runtime.observe is not None
        request = Request(scope, receive)
        ctx = new_context(request, "chat", "responses")
        renderer: Renderer = OPENAI
        try:
            raw = await receive_body(receive, ctx.headers, runtime.config.server.max_body_bytes)
            body = load_object(raw)
            check_request(body)
            ctx.raw_body = body
            turn = await self.turn(body, request, ctx)
            ctx.alias = body["model"]
        except GatewayError as err:
            reply = runtime.observe.reject(ctx, err)
        except Exception:  # a bug must still answer in OpenAI's shape (no router layer here)
            log.exception("responses request failed", extra={"request_id": ctx.request_id})
            failure = GatewayError("The gateway failed to handle this request.")
            reply = runtime.observe.reject(ctx, failure)
        else:
            responses = ResponsesRenderer(turn)
            renderer = responses
            if turn.native:
                # The cache keys what the gateway models; a native request carries more.
                ctx.headers["cache-control"] = "no-store"
            async with DisconnectWatch(receive, ctx):
                if self.any_native():  # a fallback may reach a native deployment too
                    items = [*turn.history, *turn.input_items]
                    with native_request(NativeRequest(body, items)):
                        reply = await runtime.handle(ctx)
                else:
                    reply = await runtime.handle(ctx)
            try:
                await responses.prepare(reply, ctx)
            except BaseException:
                await reply.close()
                raise
        await ReplyResponse(reply, ctx, renderer)(scope, receive, send)

    async def turn(self, body: dict[str, Any], request: Request, ctx: RequestContext) -> Turn:
        """The request's history, its items, and the canonical body (set on `ctx`)."""
        store = self.store()
        history: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous:
            record = await _read(store.get(await self.key_id(request), previous))
            if record is None:
                raise ResourceNotFound(
                    f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                )
            history = record.conversation()
        draft = Draft(body)
        items = input_items(body, draft.ids)
        native = self.native(body["model"])
        ctx.body = canonical_body(body, history, items, native=native)
        return Turn(draft, items, history, store if body.get("store", True) else None, native)

    def any_native(self) -> bool:
        config = self.runtime.config
        if self._any_native is None or self._any_native[0] is not config:
            found = any(p.responses == "native" for p in config.providers.values())
            self._any_native = (config, found)
        return self._any_native[1]

    def native(self, alias: str) -> bool:
        """Whether every deployment of `alias` speaks the Responses API itself."""
        config = self.runtime.config
        if self._native[0] is not config:
            self._native = (config, {})
        known = self._native[1]
        if alias not in known:
            model = config.models.get(alias)
            if model is None:  # not cached: a client's unknown names must not grow the map
                return False
            known[alias] = all(
                config.providers[d.provider].responses == "native" for d in model.deployments
            )
        return known[alias]

    async def retrieve(self, request: Request) -> Response:
        try:
            record = await self._record(request)
        except GatewayError as err:
            return _error(err)
        return Response(orjson.dumps(record.response), media_type="application/json")

    async def delete(self, request: Request) -> Response:
        response_id = request.path_params["response_id"]
        try:
            key_id = await self.key_id(request)
            if not is_response_id(response_id) or not await _read(
                self.store().delete(key_id, response_id)
            ):
                raise _not_found(response_id)
        except GatewayError as err:
            return _error(err)
        return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})

    async def input_items(self, request: Request) -> Response:
        try:
            record = await self._record(request)
            page = _page(record.input_items, dict(request.query_params))
        except GatewayError as err:
            return _error(err)
        return Response(orjson.dumps(page), media_type="application/json")

    async def _record(self, request: Request) -> StoredResponse:
        response_id = request.path_params["response_id"]
        key_id = await self.key_id(request)  # 401 before 404: ids are not probed without a key
        record = (
            await self.store().get(key_id, response_id) if is_response_id(response_id) else None
        )
        if record is None:
            raise _not_found(response_id)
        return record


async def _read(pending: Awaitable[T]) -> T:
    """A store call; a backend that fails is a 503, never an unhandled 500."""
    try:
        return await pending
    except GatewayError:
        raise
    except Exception:
        log.warning("the response store failed", exc_info=True)
        raise StoreUnavailable("Stored responses are unavailable right now; try again.") from None


def _page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
    limit_text = query.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIST:
        raise InvalidRequest(f"'limit' must be an integer from 1 to {MAX_LIST}.", param="limit")
    ordered = items if order == "asc" else items[::-1]
    after = query.get("after")
    if after is not None:
        ids = [item.get("id") for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    data = ordered[: int(limit_text)]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > len(data),
    }


def _not_found(response_id: str) -> ResourceNotFound:
    shown = response_id if is_response_id(response_id) else "…"
    return ResourceNotFound(f"Response with id '{shown}' not found.", param="response_id")


def _error(err: GatewayError) -> Response:
    return JSONResponse(err.to_body(), status_code=err.http_status, headers=err.headers)
