"""Relay a provider stream to the client as SSE, counting usage as it passes.

The relay owns the upstream: `reply.close()` in `finally` releases the connection and
runs the completion callbacks whether the stream finished, failed or the client left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson

from gateway.context import RequestContext
from gateway.errors import GatewayError, UpstreamError
from gateway.streaming.sse import DONE_EVENT, encode_data, encode_json
from gateway.types import Reply, Usage

log = logging.getLogger("gateway")
CHARS_PER_TOKEN = 4  # estimate for streams cut before the provider reported usage


async def relay(reply: Reply, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
    """The OpenAI encoding of `chunks`: `data:` events, `[DONE]`, errors as an error event."""
    show_usage = ctx.client_wants_usage
    try:
        async with aclosing(chunks(reply, ctx)) as parsed:  # closed with us: upstream released
            async for chunk, payload in parsed:
                if chunk.get("usage") and not show_usage:
                    if not chunk.get("choices"):
                        continue  # the usage-only chunk we asked for; the client did not
                    chunk["usage"] = None
                    payload = orjson.dumps(chunk)
                del chunk  # nothing of an event is held while the next one is awaited
                yield encode_data(payload)
                del payload
        yield DONE_EVENT
    except GatewayError as err:
        yield encode_json(err.to_body())
        yield DONE_EVENT


async def chunks(
    reply: Reply, ctx: RequestContext
) -> AsyncGenerator[tuple[dict[str, Any], bytes], None]:
    """Each upstream chunk, parsed, with its payload; usage and content counted as they pass.

    Format-neutral: every ingress format renders its events from this. Raises the
    GatewayError that ended the stream (also recorded in `reply.error`); a bug becomes a
    GatewayError too. `finally` estimates usage for cut streams and closes the reply.
    """
    assert reply.stream is not None
    content_chars = 0
    try:
        async for payload in reply.stream:
            chunk = _decode(payload)
            usage = chunk.get("usage")
            if usage:
                reply.usage = _usage(usage) or reply.usage
            content_chars += _content_chars(chunk)
            for tap in reply.taps:
                tap(chunk)
            if ctx.first_byte is None:
                ctx.first_byte = time.perf_counter()
            yield chunk, payload
            del chunk, payload, usage  # not held while the next event is awaited
        reply.completed = True
    except GatewayError as err:
        reply.error = err
        raise
    except Exception:  # a bug must still end the stream the documented way
        log.exception("stream relay failed", extra={"request_id": ctx.request_id})
        reply.error = GatewayError("The gateway failed while relaying the stream.")
        raise reply.error from None
    finally:
        if reply.usage is None:
            reply.usage = Usage(
                prompt_tokens=ctx.prompt_tokens_estimate,
                completion_tokens=-(-content_chars // CHARS_PER_TOKEN),
                estimated=True,
            )
        await reply.close()


async def release(reply: Reply, ctx: RequestContext) -> None:
    """Close a reply once the HTTP layer is done with it, sent or not. A stream closed
    before its relay read anything (the client left while the response started) never ran
    `chunks`: it is billed its prompt estimate, as a cut stream is, never 0."""
    if reply.is_stream and reply.usage is None:
        reply.usage = Usage(prompt_tokens=ctx.prompt_tokens_estimate, estimated=True)
    await reply.close()


def _decode(payload: bytes) -> dict[str, Any]:
    try:
        chunk = orjson.loads(payload)
    except orjson.JSONDecodeError:
        chunk = None
    if not isinstance(chunk, dict):
        raise UpstreamError("The provider sent a malformed stream event.")
    return chunk


def _usage(usage: object) -> Usage | None:
    """The provider's usage, or None when it is unreadable (then the relay estimates)."""
    try:
        return Usage.from_openai(usage)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _content_chars(chunk: dict[str, Any]) -> int:
    """Characters of output the client received in this chunk: text, and the names and
    argument text of tool calls (billed like text: a cut tool call is still output)."""
    total = 0
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            delta = {}
        text = delta.get("content")
        if text is None:
            text = choice.get("text")  # legacy completions stream
        if isinstance(text, str):
            total += len(text)
        total += _tool_call_chars(delta)
    return total


def _tool_call_chars(delta: dict[str, Any]) -> int:
    calls = delta.get("tool_calls")
    legacy = delta.get("function_call")  # the pre-tools function calling stream
    if calls is None and legacy is None:  # a text event: most of them
        return 0
    total = 0
    for call in [*(calls if isinstance(calls, list) else ()), {"function": legacy}]:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for field in ("name", "arguments"):
                value = function.get(field)
                if isinstance(value, str):
                    total += len(value)
    return total
