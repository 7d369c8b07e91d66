"""OpenAI-compatible providers (OpenAI, Azure's v1 API, vLLM, Ollama, Groq, Together …).

A raw passthrough: the request body goes upstream as it came (only `model` is set and
`stream_options.include_usage` added), responses and stream events come back untouched.

The HTTP client is the gateway's own (`gateway/upstream`: asyncio protocols and the
httptools parser), measured side by side on one core against the same local upstream:
httpx did 523 req/s at concurrency 1 and 153 at 64, aiohttp 2,014 and 1,482 then; against
aiohttp again, the own client took a third of its CPU per request at concurrency 1 and
a fifth at 64 (benchmarks/README.md, "Upstream client"). One `HTTPClient` per provider,
made with it and closed in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from gateway.config.schema import ProviderConfig
from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from gateway.providers.errors import scrub, upstream_status_error
from gateway.streaming.sse import DONE, SSEDecoder
from gateway.types import Endpoint, Reply, Usage
from gateway.upstream import HTTPClient, Response, Timeouts

PATHS: dict[Endpoint, str] = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
}
MAX_ERROR_BODY = 64 * 1024
# Everything the upstream client raises: its timeouts subclass TimeoutError (an OSError),
# its connection errors ConnectionError.
TRANSPORT_ERRORS = (asyncio.TimeoutError, OSError)


class OpenAIProvider:
    def __init__(self, name: str, config: ProviderConfig) -> None:
        assert config.base_url
        self.name = name
        self._base = config.base_url.rstrip("/")
        self._secrets = (config.api_key.get_secret_value(),) if config.api_key else ()
        headers = {"content-type": "application/json", **config.headers}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        timeout = config.timeout
        self._client = HTTPClient(
            timeouts=Timeouts(connect=timeout.connect, read=timeout.read, pool=timeout.pool),
            headers=headers,
            max_connections=config.max_connections,
            max_idle=config.max_keepalive,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, endpoint: Endpoint, body: dict[str, Any], *, stream: bool) -> Reply:
        if stream:
            options = body.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            options["include_usage"] = True
            body = {**body, "stream_options": options}
        try:
            response = await self._client.post(self._base + PATHS[endpoint], orjson.dumps(body))
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc) from None
        try:
            if response.status >= 400:
                raise await self._status_error(response)
            if stream and response.content_type == "text/event-stream":
                return Reply(stream=self._payloads(response))
            data = await response.read()
        except TRANSPORT_ERRORS as exc:
            response.close()
            raise self._transport_error(exc) from None
        except BaseException:
            response.close()
            raise
        response.release()
        return self._complete_reply(data)

    def _complete_reply(self, data: bytes) -> Reply:
        try:
            body = orjson.loads(_scrub_bytes(data, self._secrets))
        except orjson.JSONDecodeError:
            raise UpstreamError("The provider sent a malformed JSON reply.") from None
        if not isinstance(body, dict):
            raise UpstreamError("The provider sent a JSON reply that is not an object.")
        try:
            usage = Usage.from_openai(body.get("usage"))
        except (TypeError, ValueError):  # unreadable usage: pass the reply on, count nothing
            usage = None
        return Reply(body=body, usage=usage)

    async def _payloads(self, response: Response) -> AsyncGenerator[bytes, None]:
        decoder = SSEDecoder()
        finished = False
        try:
            async for chunk in response:
                for payload in decoder.feed(chunk):
                    if payload == DONE:
                        finished = True
                        return
                    if payload.startswith(b'{"error"'):
                        raise upstream_status_error(502, payload, secrets=self._secrets)
                    yield _scrub_bytes(payload, self._secrets)
                chunk = payload = b""  # not held while the next read is awaited
            for payload in decoder.flush():
                if payload == DONE:
                    finished = True
                    return
                yield payload
            raise UpstreamUnavailable("The provider's stream ended before it was complete.")
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc) from None
        finally:
            # A stream left early (client gone, error) must not go back to the pool half read.
            if finished:
                response.release()
            else:
                response.close()

    async def _status_error(self, response: Response) -> GatewayError:
        body = b""
        async for chunk in response:
            body += chunk
            if len(body) > MAX_ERROR_BODY:
                break
        response.close()
        return upstream_status_error(
            response.status,
            body[:MAX_ERROR_BODY],
            retry_after=response.headers.get("retry-after"),
            secrets=self._secrets,
        )

    def _transport_error(self, exc: BaseException) -> GatewayError:
        detail = scrub(type(exc).__name__, self._secrets)
        if isinstance(exc, asyncio.TimeoutError):  # the upstream client's timeouts subclass it
            return UpstreamTimeout(f"The provider '{self.name}' timed out ({detail}).")
        return UpstreamUnavailable(f"The provider '{self.name}' could not be reached ({detail}).")


def _scrub_bytes(data: bytes, secrets: tuple[str, ...]) -> bytes:
    """The provider's own key never reaches a client, even inside a 200 reply (a memmem
    per secret: negligible next to parsing)."""
    for raw in _searched(secrets):
        if raw in data:
            data = data.replace(raw, b"***")
    return data


@functools.lru_cache(maxsize=64)
def _searched(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    """The secrets as bytes, those long enough to search for: encoded once, not per event."""
    return tuple(raw for raw in (secret.encode() for secret in secrets) if len(raw) >= 6)
