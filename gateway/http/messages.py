"""Anthropic's Messages endpoints: POST /v1/messages and /v1/messages/count_tokens.

The client's body is parsed once into the canonical request (ctx.body) and kept as it
came (ctx.raw_body); the pipeline runs unchanged; the reply is written in Anthropic's
format — re-rendered from the canonical reply, or relayed as-is when a native Anthropic
deployment answered. Every error, before or after the first byte, is in Anthropic's shape.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.accounting.tokens import count_prompt_tokens
from gateway.context import RequestContext
from gateway.errors import GatewayError, ModelNotFound, PermissionDenied
from gateway.http.admin_auth import caller
from gateway.http.disconnect import DisconnectWatch
from gateway.http.openai import new_context
from gateway.http.reply import ReplyResponse
from gateway.http.request import parse_body, read_body, receive_body
from gateway.ingress.anthropic.events import message_events, native_events
from gateway.ingress.anthropic.parse import parse_messages
from gateway.ingress.anthropic.render import error_body, message_body
from gateway.runtime import Runtime
from gateway.types import Reply

DROPPED_HEADER = "x-gateway-dropped-params"  # what translation could not carry over


@dataclass(frozen=True)
class AnthropicRenderer:
    def body(self, reply: Reply, ctx: RequestContext) -> bytes:
        if reply.error is not None:
            return orjson.dumps(error_body(reply.error))
        if reply.format == "anthropic":
            return orjson.dumps(reply.body)
        stops = ctx.raw_body.get("stop_sequences") if ctx.raw_body else None
        return orjson.dumps(message_body(reply.body or {}, ctx.request_id, stops))

    def events(self, reply: Reply, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        if reply.format == "anthropic":
            return native_events(reply, ctx)
        return message_events(reply, ctx)


ANTHROPIC = AnthropicRenderer()


class MessagesEndpoint:
    """POST /v1/messages (raw ASGI, like the OpenAI endpoints)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        request = Request(scope, receive)
        ctx = new_context(request, "chat", "anthropic")
        assert runtime.handle is not None and runtime.observe is not None
        dropped: list[str] = []
        try:
            raw = await receive_body(receive, ctx.headers, runtime.config.server.max_body_bytes)
            ctx.raw_body = parse_body(raw, "chat")
            parsed = parse_messages(ctx.raw_body)
        except GatewayError as err:
            reply = runtime.observe.reject(ctx, err)
        else:
            ctx.body, dropped = parsed.body, parsed.dropped
            ctx.alias = ctx.body["model"]
            async with DisconnectWatch(receive, ctx):
                reply = await runtime.handle(ctx)
        if dropped and reply.format != "anthropic" and reply.error is None:
            ctx.response_headers[DROPPED_HEADER] = ", ".join(dropped)
        await ReplyResponse(reply, ctx, ANTHROPIC)(scope, receive, send)


class CountTokensEndpoint:
    """POST /v1/messages/count_tokens: the prompt's tokens, counted offline, for a key
    allowed to use the model (no provider is called, no limit is spent)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        ctx = new_context(request, "chat", "anthropic")
        try:
            principal = await caller(self.runtime, request)
            raw = await read_body(request, self.runtime.config.server.max_body_bytes)
            body = parse_messages(parse_body(raw, "chat"), count_only=True).body
            config = self.runtime.config
            model = body["model"]
            if model not in config.models and model not in config.routes:
                raise ModelNotFound(model)
            if not principal.may_use(model):
                raise PermissionDenied(f"This key may not use the model '{model}'.")
            tokens = count_prompt_tokens(body, "chat")
            response = Response(
                orjson.dumps({"input_tokens": tokens}), media_type="application/json"
            )
        except GatewayError as err:
            response = Response(
                orjson.dumps(error_body(err)),
                status_code=err.http_status,
                media_type="application/json",
                headers={**err.headers, "x-request-id": ctx.request_id},
            )
        await response(scope, receive, send)


def messages_endpoints(runtime: Runtime) -> dict[str, CountTokensEndpoint | MessagesEndpoint]:
    return {
        "/v1/messages": MessagesEndpoint(runtime),
        "/v1/messages/count_tokens": CountTokensEndpoint(runtime),
    }
