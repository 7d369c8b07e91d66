"""Read and check a request body: once, bounded, only the fields the gateway itself uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import Receive

from gateway.errors import BodyTooLarge, ClientDisconnected, InvalidRequest
from gateway.request import CanonicalRequest
from gateway.types import Endpoint

MAX_WRITE_DEPTH = 255  # orjson.dumps refuses deeper values
REQUIRED_FIELD: dict[Endpoint, str] = {
    "chat": "messages",
    "completions": "prompt",
    "embeddings": "input",
}


async def read_body(request: Request, limit: int) -> bytes:
    return await receive_body(request.receive, request.headers, limit)


async def receive_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The whole body, at most `limit` bytes (413 past it, from Content-Length or as it
    arrives), read straight from ASGI `receive` (as Starlette's `Request.stream()` does,
    without its generator per request)."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Invalid Content-Length header.")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":  # gone mid-body, or cut at the body timeout
            raise ClientDisconnected("The client disconnected before sending the whole body.")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_body(raw: bytes, endpoint: Endpoint, max_choices: int | None = None) -> dict[str, Any]:
    body = load_object(raw)
    check_fields(body, endpoint)
    if max_choices is not None:
        check_choices(body, endpoint, max_choices)
    return body


def load_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object that can be forwarded (any ingress format)."""
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    _check_depth(raw, body)
    return body


def _check_depth(raw: bytes, body: dict[str, Any]) -> None:
    # orjson reads 1024 levels but writes only 255: a body that parses but could never be
    # forwarded (or hashed for the cache) is refused here instead of failing later as a 500.
    if raw.count(b"[") + raw.count(b"{") < MAX_WRITE_DEPTH:
        return  # fewer brackets than levels: cannot be too deep, skip the encode
    try:
        orjson.dumps(body)
    except TypeError:
        raise InvalidRequest(
            f"The request body is nested too deeply (at most {MAX_WRITE_DEPTH - 1} levels)."
        ) from None


def check_fields(body: dict[str, Any], endpoint: Endpoint) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    field = REQUIRED_FIELD[endpoint]
    if field not in body:
        raise InvalidRequest(f"'{field}' is required.", param=field)
    if endpoint == "chat":
        _check_messages(body["messages"])
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    if endpoint == "embeddings" and body.get("stream"):
        raise InvalidRequest("Embeddings cannot be streamed.", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
    for name in ("max_tokens", "max_completion_tokens", "n", "best_of"):
        value = body.get(name)
        if value is not None and (not _is_int(value) or value < 1):
            raise InvalidRequest(f"'{name}' must be a positive integer.", param=name)


def check_choices(body: dict[str, Any], endpoint: Endpoint, limit: int) -> None:
    choices = CanonicalRequest(endpoint, body).choices()
    if choices > limit:
        raise InvalidRequest(
            f"The request asks for {choices} choices (n, best_of); at most {limit} are allowed.",
            code="too_many_choices",
            param="n",
        )


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"'messages[{i}]' must be an object with a string 'role'.", param=f"messages[{i}]"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest(
                f"'messages[{i}].content' must be a string or an array of parts.",
                param=f"messages[{i}].content",
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
