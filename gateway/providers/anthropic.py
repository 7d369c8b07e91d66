"""Anthropic's Messages API (`kind: anthropic`), on the same pooled upstream client as the
`openai` kind (this class reuses its client, error classification and secret scrubbing).

Two ways in:
- `send_native`: a Messages client (ctx.ingress == "anthropic") — the client's raw body goes
  upstream with only the pipeline's decisions applied (model, max_tokens), `anthropic-beta`
  and `anthropic-version` passed on, `cache_control` and thinking untouched; the reply comes
  back as-is (`Reply.format = "anthropic"`), streams event by event, byte for byte.
- `send`: every other client — the canonical chat request is translated to Messages and the
  reply (or each stream event) back to chat (gateway/ingress/anthropic/to_messages.py,
  from_messages.py).
Usage is read from the reply or from the stream's message_start / message_delta events.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from gateway.config.schema import ProviderConfig
from gateway.context import RequestContext
from gateway.errors import InvalidRequest, UpstreamError, UpstreamUnavailable
from gateway.ingress.anthropic.from_messages import ChunkWriter, chat_body, usage_of
from gateway.ingress.anthropic.to_messages import messages_request
from gateway.providers.openai import TRANSPORT_ERRORS, OpenAIProvider, _scrub_bytes
from gateway.streaming.sse import SSEDecoder
from gateway.types import Endpoint, Ingress, Reply
from gateway.upstream import Response

DEFAULT_BASE_URL = "https://api.anthropic.com/v1"
API_VERSION = "2023-06-01"
CLIENT_HEADERS = ("anthropic-beta", "anthropic-version")  # passed on to native calls
USAGE_EVENTS = (b"event: message_start", b"event: message_delta")


class AnthropicProvider(OpenAIProvider):
    ingress: Ingress = "anthropic"  # dispatch sends Messages clients to `send_native`

    def __init__(self, name: str, config: ProviderConfig) -> None:
        headers = {"anthropic-version": API_VERSION, **config.headers}
        if config.api_key:
            headers["x-api-key"] = config.api_key.get_secret_value()
        session_config = config.model_copy(
            update={
                "api_key": None,  # never sent as a Bearer token
                "base_url": config.base_url or DEFAULT_BASE_URL,
                "headers": headers,
            }
        )
        super().__init__(name, session_config)
        self._secrets = (config.api_key.get_secret_value(),) if config.api_key else ()

    async def send(self, endpoint: Endpoint, body: dict[str, Any], *, stream: bool) -> Reply:
        if endpoint != "chat":
            raise InvalidRequest(f"Anthropic models serve chat only, not {endpoint}.")
        response = await self._post(messages_request(body, stream=stream), {})
        if stream and response.content_type == "text/event-stream":
            return Reply(stream=self._chat_chunks(response))
        message, usage = self._read_json(await self._read(response))
        try:
            chat, _ = chat_body(message)
        except (AttributeError, TypeError, ValueError):
            raise UpstreamError("The provider sent a malformed Messages reply.") from None
        return Reply(body=chat, usage=usage)

    async def send_native(
        self, ctx: RequestContext, body: dict[str, Any], *, stream: bool
    ) -> Reply:
        assert ctx.raw_body is not None
        raw = {**ctx.raw_body, "model": body["model"]}
        if "max_tokens" in body:  # caps may have clamped it
            raw["max_tokens"] = body["max_tokens"]
        headers = {name: ctx.headers[name] for name in CLIENT_HEADERS if name in ctx.headers}
        response = await self._post(raw, headers)
        if stream and response.content_type == "text/event-stream":
            reply = Reply(format="anthropic")
            reply.stream = self._native_events(response, reply)
            return reply
        message, usage = self._read_json(await self._read(response))
        return Reply(body=message, usage=usage, format="anthropic")

    async def _post(self, body: dict[str, Any], headers: dict[str, str]) -> Response:
        try:
            response = await self._client.post(
                self._base + "/messages", orjson.dumps(body), headers
            )
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc) from None
        if response.status >= 400:
            raise await self._status_error(response)
        return response

    async def _read(self, response: Response) -> bytes:
        try:
            data = await response.read()
        except TRANSPORT_ERRORS as exc:
            response.close()
            raise self._transport_error(exc) from None
        response.release()
        return data

    def _read_json(self, data: bytes) -> tuple[dict[str, Any], Any]:
        try:
            message = orjson.loads(_scrub_bytes(data, self._secrets))
        except orjson.JSONDecodeError:
            raise UpstreamError("The provider sent a malformed JSON reply.") from None
        if not isinstance(message, dict):
            raise UpstreamError("The provider sent a JSON reply that is not an object.")
        return message, usage_of(message.get("usage"))

    async def _chat_chunks(self, response: Response) -> AsyncGenerator[bytes, None]:
        decoder, writer = SSEDecoder(), ChunkWriter()
        try:
            async for chunk in response:
                for payload in decoder.feed(chunk):
                    for out in _translated(writer, payload):
                        yield _scrub_bytes(out, self._secrets)
                if writer.finished:
                    return
            raise UpstreamUnavailable("The provider's stream ended before it was complete.")
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc) from None
        finally:
            _release(response, writer.finished)

    async def _native_events(self, response: Response, reply: Reply) -> AsyncGenerator[bytes, None]:
        """Whole SSE events as the provider framed them; usage and errors read on the way."""
        buffer, finished = b"", False
        try:
            async for chunk in response:
                buffer += chunk
                while (end := buffer.find(b"\n\n")) >= 0:
                    raw, buffer = buffer[: end + 2], buffer[end + 2 :]
                    try:
                        finished = self._inspect(raw, reply) or finished
                    except (AttributeError, TypeError, ValueError):
                        raise UpstreamError("The provider sent a malformed stream event.") from None
                    yield _scrub_bytes(raw, self._secrets)
                if finished:
                    return
            raise UpstreamUnavailable("The provider's stream ended before it was complete.")
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc) from None
        finally:
            _release(response, finished)

    def _inspect(self, raw: bytes, reply: Reply) -> bool:
        """Read usage from an event; raise for an error event; True at message_stop."""
        if raw.startswith(b"event: message_stop"):
            return True
        if raw.startswith(USAGE_EVENTS):
            data = _event_data(_data_line(raw))
            usage = (data.get("message") or {}).get("usage") or data.get("usage")
            counted = usage_of(usage)
            if counted is not None and isinstance(usage, dict):
                if reply.usage is None or data.get("type") == "message_start":
                    reply.usage = counted
                else:  # message_delta: cumulative output, and input when it says so
                    reply.usage.completion_tokens = counted.completion_tokens
                    if usage.get("input_tokens") is not None:
                        reply.usage.prompt_tokens = counted.prompt_tokens
        elif raw.startswith(b"event: error"):
            error = _event_data(_data_line(raw)).get("error") or {}
            message = error.get("message") if isinstance(error, dict) else None
            raise UpstreamError(str(message or "The provider's stream failed."))
        return False


def _translated(writer: ChunkWriter, payload: bytes) -> list[bytes]:
    try:
        return writer.feed(_event_data(payload))
    except (AttributeError, TypeError, ValueError):
        raise UpstreamError("The provider sent a malformed stream event.") from None


def _data_line(raw: bytes) -> bytes:
    start = raw.find(b"data:")
    if start < 0:
        return b""
    line = raw[start + 5 :].split(b"\n", 1)[0]
    return line.strip()


def _event_data(payload: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError("The provider sent a malformed stream event.")
    return data


def _release(response: Response, finished: bool) -> None:
    # A stream left early (client gone, error) must not go back to the pool half read.
    if finished:
        response.release()
    else:
        response.close()
