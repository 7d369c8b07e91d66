"""The OpenAI-compatible endpoints: parse once, run the pipeline, send the reply."""

from __future__ import annotations

import itertools
import os
import re
import secrets

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.http.disconnect import DisconnectWatch
from gateway.http.reply import ReplyResponse
from gateway.http.request import parse_body, receive_body
from gateway.runtime import Runtime
from gateway.types import Endpoint, Ingress

REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# A new request's id: 32 hex digits, a random 64-bit prefix per process and a counter
# (uuid4 reads the system's random source per call, 2 us). Unique across instances but
# for a 2^-64 chance; nothing is keyed by it without the key that made the request.
_ID_PREFIX = ""
_ID_NUMBERS = itertools.count()


def _new_id_prefix() -> None:
    global _ID_PREFIX
    _ID_PREFIX = f"{secrets.randbits(64):016x}"


_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)  # a forked worker has its own


def request_id(headers: dict[str, str]) -> str:
    given = headers.get("x-request-id")
    if given and REQUEST_ID.fullmatch(given):
        return given
    return f"{_ID_PREFIX}{next(_ID_NUMBERS):016x}"


def header_dict(request: Request) -> dict[str, str]:
    """The request's headers by (lower-case) name, the first of repeated ones, as
    `request.headers[name]` reads them; built from the raw list in one pass (Starlette's
    Headers looks each name up in the list again, and raises KeyError for a missing one)."""
    headers: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        key = name.decode("latin-1")
        if key not in headers:
            headers[key] = value.decode("latin-1")
    return headers


def new_context(
    request: Request, endpoint: Endpoint, ingress: Ingress = "openai", *, dry_run: bool = False
) -> RequestContext:
    """The context of a request as it arrives (no body read yet), for every ingress format."""
    headers = header_dict(request)
    return RequestContext(
        request_id=request_id(headers),
        endpoint=endpoint,
        body={},
        headers=headers,
        client_ip=request.client.host if request.client else "",
        ingress=ingress,
        dry_run=dry_run,
    )


class CompletionEndpoint:
    """An ASGI app per OpenAI endpoint (raw ASGI: the reply decides how it is sent)."""

    def __init__(self, runtime: Runtime, endpoint: Endpoint, *, dry_run: bool = False) -> None:
        self.runtime = runtime
        self.endpoint = endpoint
        self.dry_run = dry_run  # answer with the routing decision, call no provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        assert runtime.handle is not None and runtime.observe is not None
        ctx, refused = await self.arrive(scope, receive)
        if refused is not None:
            reply = runtime.observe.reject(ctx, refused)
        else:
            ctx.alias = ctx.body["model"]
            async with DisconnectWatch(receive, ctx):
                reply = await runtime.handle(ctx)
        await ReplyResponse(reply, ctx)(scope, receive, send)

    async def arrive(
        self, scope: Scope, receive: Receive
    ) -> tuple[RequestContext, GatewayError | None]:
        """The request's context, its body read and checked, or the error that refuses it.
        A frame of its own: the raw body is not held while the reply streams."""
        request = Request(scope, receive)
        ctx = new_context(request, self.endpoint, dry_run=self.dry_run)
        config = self.runtime.config
        try:
            raw = await receive_body(receive, ctx.headers, config.server.max_body_bytes)
            ctx.body = parse_body(raw, self.endpoint, config.caps.max_choices)
        except GatewayError as err:
            return ctx, err
        return ctx, None
