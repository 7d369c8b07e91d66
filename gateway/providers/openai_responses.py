"""An OpenAI upstream that speaks the Responses API itself (`responses: native`).

A Responses request whose deployment is native goes to the upstream's `/responses` as
the client sent it, with only the pipeline's decisions applied: the deployment's model
name and the (capped) output bound. `previous_response_id` names a response the gateway
stored, so the stored chain is sent as `input` items instead. Every other request (chat,
completions, embeddings, and a Responses request that fell back to a translating
deployment) goes through the wrapped provider unchanged.

Which client body belongs to the request in flight travels in a context variable set by
the Responses endpoint around the pipeline call (`native_request`): provider calls run in
the request's task, and the Provider interface carries only the canonical body.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import UpstreamError, UpstreamUnavailable
from gateway.providers.openai import TRANSPORT_ERRORS, OpenAIProvider, _scrub_bytes
from gateway.streaming.sse import SSEDecoder
from gateway.types import Endpoint, Reply, Usage
from gateway.upstream import Response

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
DROPPED = ("previous_response_id", "stream_options")


@dataclass(frozen=True, slots=True)
class NativeRequest:
    body: dict[str, Any]  # the client's Responses body
    items: list[dict[str, Any]]  # the stored chain's items, then this request's input


_CURRENT: ContextVar[NativeRequest | None] = ContextVar("native_responses", default=None)


@contextmanager
def native_request(request: NativeRequest) -> Iterator[None]:
    token = _CURRENT.set(request)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def native_body(request: NativeRequest, canonical: dict[str, Any], stream: bool) -> dict[str, Any]:
    body = {k: v for k, v in request.body.items() if k not in DROPPED}
    body["model"] = canonical["model"]
    body["input"] = [_as_input(item) for item in request.items]
    body["stream"] = stream
    if canonical.get("max_tokens") is not None:  # the caps stage's bound
        body["max_output_tokens"] = canonical["max_tokens"]
    return body


def _as_input(item: dict[str, Any]) -> dict[str, Any]:
    """Input items without the ids the gateway gave them (the upstream never saw those);
    output items (assistant messages, calls, reasoning) keep the upstream's own."""
    if item.get("type") == "function_call_output" or (
        item.get("type") == "message" and item.get("role") != "assistant"
    ):
        return {k: v for k, v in item.items() if k not in ("id", "status")}
    return item


def responses_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    try:
        return Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))
    except (TypeError, ValueError):
        return None


class NativeResponses:
    """The wrapped OpenAI provider, plus the native `/responses` path."""

    def __init__(self, inner: OpenAIProvider) -> None:
        self.inner = inner
        self.name = inner.name

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def send(self, endpoint: Endpoint, body: dict[str, Any], *, stream: bool) -> Reply:
        request = _CURRENT.get()
        if request is None or endpoint != "chat":
            return await self.inner.send(endpoint, body, stream=stream)
        inner = self.inner
        payload = orjson.dumps(native_body(request, body, stream))
        try:
            response = await inner._client.post(inner._base + "/responses", payload)
        except TRANSPORT_ERRORS as exc:
            raise inner._transport_error(exc) from None
        try:
            if response.status >= 400:
                raise await inner._status_error(response)
            if stream and response.content_type == "text/event-stream":
                reply = Reply()
                reply.stream = self._events(response, reply)
                return reply
            data = await response.read()
        except TRANSPORT_ERRORS as exc:
            response.close()
            raise inner._transport_error(exc) from None
        except BaseException:
            response.close()
            raise
        response.release()
        return self._complete(data)

    def _complete(self, data: bytes) -> Reply:
        try:
            body = orjson.loads(_scrub_bytes(data, self.inner._secrets))
        except orjson.JSONDecodeError:
            raise UpstreamError("The provider sent a malformed JSON reply.") from None
        if not isinstance(body, dict) or body.get("object") != "response":
            raise UpstreamError("The provider's reply is not a Response object.")
        return Reply(body=body, usage=responses_usage(body.get("usage")))

    async def _events(self, response: Response, reply: Reply) -> AsyncGenerator[bytes, None]:
        """Each event's data; the terminal event's usage is recorded before it is passed on."""
        decoder = SSEDecoder()
        finished = False
        try:
            async for chunk in response:
                for payload in decoder.feed(chunk):
                    payload = _scrub_bytes(payload, self.inner._secrets)
                    kind, usage = _terminal(payload)
                    if kind is not None:
                        reply.usage = usage or reply.usage
                        finished = True
                    yield payload
                    if finished:
                        return
            raise UpstreamUnavailable("The provider's stream ended before it was complete.")
        except TRANSPORT_ERRORS as exc:
            raise self.inner._transport_error(exc) from None
        finally:
            if finished:
                response.release()
            else:
                response.close()


def _terminal(payload: bytes) -> tuple[str | None, Usage | None]:
    """The event's type when it ends the stream, with the response's usage."""
    if (
        b'"response.completed"' not in payload
        and b'"response.incomplete"' not in payload
        and (b'"response.failed"' not in payload and b'"error"' not in payload)
    ):
        return None, None
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None, None
    kind = event.get("type") if isinstance(event, dict) else None
    if kind not in TERMINAL:
        return None, None
    response = event.get("response")
    usage = responses_usage(response.get("usage")) if isinstance(response, dict) else None
    return kind, usage
