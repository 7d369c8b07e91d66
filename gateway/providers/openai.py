"""OpenAI-compatible providers (OpenAI, Azure's v1 API, vLLM, Ollama, Groq, Together …).

A raw passthrough: the request body goes upstream as it came (only `model` is set and
`stream_options.include_usage` added), responses and stream events come back untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from gateway.config.schema import ProviderConfig
from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from gateway.providers.errors import scrub, upstream_status_error
from gateway.streaming.sse import DONE, SSEDecoder
from gateway.types import Endpoint, Reply, Usage

PATHS: dict[Endpoint, str] = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
}
MAX_ERROR_BODY = 64 * 1024


class OpenAIProvider:
    def __init__(self, name: str, config: ProviderConfig) -> None:
        assert config.base_url
        self.name = name
        self._secrets = (config.api_key.get_secret_value(),) if config.api_key else ()
        headers = {"content-type": "application/json", **config.headers}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        timeout = config.timeout
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(
                connect=timeout.connect, read=timeout.read, write=timeout.write, pool=timeout.pool
            ),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_keepalive,
            ),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, endpoint: Endpoint, body: dict[str, Any], *, stream: bool) -> Reply:
        if stream:
            options = body.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            options["include_usage"] = True
            body = {**body, "stream_options": options}
        request = self._client.build_request("POST", PATHS[endpoint], content=orjson.dumps(body))
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        try:
            if response.status_code >= 400:
                raise await self._status_error(response)
            if stream and response.headers.get("content-type", "").startswith("text/event-stream"):
                return Reply(stream=self._payloads(response))
            data = await response.aread()
        except httpx.HTTPError as exc:
            await response.aclose()
            raise self._transport_error(exc) from None
        except BaseException:
            await response.aclose()
            raise
        await response.aclose()
        return self._complete_reply(data)

    def _complete_reply(self, data: bytes) -> Reply:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError("The provider sent a malformed JSON reply.") from None
        if not isinstance(body, dict):
            raise UpstreamError("The provider sent a JSON reply that is not an object.")
        return Reply(body=body, usage=Usage.from_openai(body.get("usage")))

    async def _payloads(self, response: httpx.Response) -> AsyncIterator[bytes]:
        decoder = SSEDecoder()
        try:
            async for chunk in response.aiter_raw():
                for payload in decoder.feed(chunk):
                    if payload == DONE:
                        return
                    if payload.startswith(b'{"error"'):
                        raise upstream_status_error(502, payload, secrets=self._secrets)
                    yield payload
            for payload in decoder.flush():
                if payload == DONE:
                    return
                yield payload
            raise UpstreamUnavailable("The provider's stream ended before it was complete.")
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        finally:
            await response.aclose()

    async def _status_error(self, response: httpx.Response) -> GatewayError:
        body = b""
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > MAX_ERROR_BODY:
                break
        await response.aclose()
        return upstream_status_error(
            response.status_code,
            body[:MAX_ERROR_BODY],
            retry_after=response.headers.get("retry-after"),
            secrets=self._secrets,
        )

    def _transport_error(self, exc: httpx.HTTPError) -> GatewayError:
        detail = scrub(type(exc).__name__, self._secrets)
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeout(f"The provider '{self.name}' timed out ({detail}).")
        return UpstreamUnavailable(f"The provider '{self.name}' could not be reached ({detail}).")
