"""Providers litellm speaks (Anthropic, Gemini, Bedrock …), translated to and from OpenAI.

Imported only when a config uses `kind: litellm` (importing litellm takes seconds).

Request fields: the OpenAI fields go to litellm as they are; OpenAI fields the target
provider cannot express are dropped (`drop_params=True`), as OpenAI-style clients send
many of them by default. Unknown fields pass on too: litellm puts them into the
provider's request body. Fields litellm would read as its own settings instead (api_base,
api_key, mock_response, aws_* …) are refused with a 400, so a client can never redirect
the call or swap credentials.

Streams: litellm's chunks leave as OpenAI chunks; usage leaves only in a final
usage-only chunk (`choices: []`), which the relay hides from clients who did not ask.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price map

import httpx
import litellm
import orjson
from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler
from litellm.types.utils import all_litellm_params

from gateway.config.schema import ProviderConfig
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.providers.errors import upstream_status_error
from gateway.types import Endpoint, Reply, Usage

OPENAI_FIELDS = frozenset(
    {
        # chat
        *("messages", "functions", "function_call", "temperature", "top_p", "n", "stop"),
        *("max_tokens", "max_completion_tokens", "modalities", "prediction", "audio"),
        *("presence_penalty", "frequency_penalty", "logit_bias", "user", "response_format"),
        *("seed", "tools", "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs"),
        *("reasoning_effort", "verbosity", "safety_identifier", "service_tier", "store"),
        *("prompt_cache_key", "prompt_cache_retention", "web_search_options", "thinking"),
        # legacy completions and embeddings
        *("prompt", "suffix", "echo", "best_of", "input", "dimensions", "encoding_format"),
    }
)
# Set by the adapter itself, never taken from the client's body.
OWN_FIELDS = frozenset({"model", "stream", "stream_options"})
# OpenAI-platform bookkeeping that other providers have no use for, and that litellm
# would read as its own logging metadata.
DROPPED_FIELDS = frozenset({"metadata"})
SETTING_PREFIXES = ("litellm", "api_", "aws_", "vertex_", "azure_", "watsonx_", "input_cost")
LITELLM_SETTINGS = (
    frozenset(all_litellm_params)
    | frozenset(inspect.signature(litellm.completion).parameters)
    | frozenset(inspect.signature(litellm.text_completion).parameters)
    | frozenset(inspect.signature(litellm.embedding).parameters)
) - OPENAI_FIELDS
# litellm providers whose handlers take an AsyncHTTPHandler as `client`; the others go
# through the openai SDK (which wants its own client type) and use litellm's cached client.
POOLED_CLIENT_PROVIDERS = frozenset({"anthropic", "gemini", "vertex_ai", "bedrock"})

CALLS: dict[Endpoint, Callable[..., Awaitable[Any]]] = {
    "chat": litellm.acompletion,
    "completions": litellm.atext_completion,
    "embeddings": litellm.aembedding,
}


def _quiet_litellm() -> None:
    """No telemetry, callbacks, debug banners or message logging; retries are dispatch's."""
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.set_verbose = False  # type: ignore[attr-defined]
    litellm.turn_off_message_logging = True
    litellm.success_callback = []
    litellm.failure_callback = []
    litellm.callbacks = []
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)


_quiet_litellm()


@functools.cache
def _warm_up(litellm_provider: str) -> None:
    """Pay litellm's lazy imports (about 2 s: proxy types, tiktoken's bundled encoding)
    at start-up rather than on a client's first request. No network: a mock reply."""
    litellm.completion(
        model=f"{litellm_provider}/warm-up",
        messages=[{"role": "user", "content": "hi"}],
        mock_response="ok",
    )
    import anyio._backends._asyncio  # noqa: F401  (httpx's async transport)
    from litellm.litellm_core_utils.default_encoding import encoding  # noqa: F401


class LiteLLMProvider:
    def __init__(self, name: str, config: ProviderConfig) -> None:
        assert config.litellm_provider
        self.name = name
        self._prefix = config.litellm_provider
        self._api_key = config.api_key.get_secret_value() if config.api_key else None
        self._secrets = (self._api_key,) if self._api_key else ()
        self._base_url = config.base_url
        self._headers = dict(config.headers)
        t = config.timeout
        self._timeout = httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool)
        self._client: AsyncHTTPHandler | None = None
        _warm_up(self._prefix)
        if self._prefix in POOLED_CLIENT_PROVIDERS:
            limits = httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_keepalive,
            )
            self._client = AsyncHTTPHandler(
                timeout=self._timeout,
                transport=httpx.AsyncHTTPTransport(limits=limits),
                follow_redirects=False,
            )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]

    async def send(self, endpoint: Endpoint, body: dict[str, Any], *, stream: bool) -> Reply:
        kwargs = self._call_kwargs(endpoint, body, stream=stream)
        try:
            result = await CALLS[endpoint](**kwargs)
        except Exception as exc:
            raise self._gateway_error(exc) from None
        if stream and endpoint != "embeddings":
            return Reply(stream=_ClosingStream(self._payloads(result), result))
        data = _to_dict(result)
        raw = orjson.dumps(data) if self._secrets else b""
        if _contains_secret(raw, self._secrets):
            data = orjson.loads(_scrub_bytes(raw, self._secrets))
        return Reply(body=data, usage=Usage.from_openai(data.get("usage")))

    def _call_kwargs(
        self, endpoint: Endpoint, body: dict[str, Any], *, stream: bool
    ) -> dict[str, Any]:
        kwargs = {k: v for k, v in body.items() if k not in OWN_FIELDS | DROPPED_FIELDS}
        for key in kwargs:
            if key in LITELLM_SETTINGS or key.startswith(SETTING_PREFIXES):
                raise InvalidRequest(f"The field '{key}' is not accepted.", param=key)
        kwargs.update(
            model=f"{self._prefix}/{body['model']}",
            api_key=self._api_key,
            api_base=self._base_url,
            timeout=self._timeout,
            drop_params=True,
        )
        if self._client is not None:
            kwargs["client"] = self._client
        if self._headers:
            kwargs["extra_headers"] = dict(self._headers)
        if stream and endpoint != "embeddings":
            options = body.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            kwargs.update(stream=True, stream_options={**options, "include_usage": True})
        return kwargs

    async def _payloads(self, stream: Any) -> AsyncGenerator[bytes, None]:
        """OpenAI chunk payloads; usage only in a final usage-only chunk."""
        usage: dict[str, Any] | None = None
        last: dict[str, Any] = {}
        finished = False
        try:
            async for chunk in stream:
                data = _to_dict(chunk)
                usage = data.pop("usage", None) or usage
                last = data
                choices = data.get("choices")
                if not choices:
                    continue
                text_completion = data.get("object") == "text_completion"
                for choice in choices:
                    choice.setdefault("finish_reason", None)
                    if text_completion:
                        choice.setdefault("text", "")
                    finished = finished or choice["finish_reason"] is not None
                yield _scrub_bytes(orjson.dumps(data), self._secrets)
        except GatewayError:
            raise
        except Exception as exc:
            raise self._gateway_error(exc) from None
        finally:
            await _close_stream(stream)
        if not finished:
            raise UpstreamUnavailable("The provider's stream ended before it was complete.")
        if usage:
            final = {k: last[k] for k in ("id", "object", "created", "model") if k in last}
            yield orjson.dumps({**final, "choices": [], "usage": usage})

    def _gateway_error(self, exc: Exception) -> GatewayError:
        """Classify a litellm failure once: timeout, unreachable, or the provider's status."""
        if isinstance(exc, GatewayError):
            return exc
        if _caused_by(exc, (httpx.TimeoutException, TimeoutError)) or isinstance(
            exc,
            litellm.Timeout,  # type: ignore[attr-defined]
        ):
            return UpstreamTimeout(f"The provider '{self.name}' timed out.")
        if _caused_by(exc, (httpx.TransportError, ConnectionError)) or isinstance(
            exc,
            litellm.APIConnectionError,  # type: ignore[attr-defined]
        ):
            # By type only: litellm's text names hosts, and messages never carry upstream URLs.
            detail = type(_root_cause(exc)).__name__
            return UpstreamUnavailable(
                f"The provider '{self.name}' could not be reached ({detail})."
            )
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and 400 <= status <= 599:
            return upstream_status_error(
                status,
                _provider_error_body(str(getattr(exc, "message", exc))),
                retry_after=_retry_after(exc),
                secrets=self._secrets,
            )
        detail = type(exc).__name__
        return UpstreamError(f"The provider '{self.name}' failed ({detail}).", retryable=False)


class _ClosingStream:
    """The payloads, plus a close that releases litellm's stream even if iteration never
    started (a generator's `finally` runs only once it has)."""

    def __init__(self, payloads: AsyncGenerator[bytes, None], upstream: Any) -> None:
        self._payloads = payloads
        self._upstream = upstream

    def __aiter__(self) -> _ClosingStream:
        return self

    async def __anext__(self) -> bytes:
        return await self._payloads.__anext__()

    async def aclose(self) -> None:
        try:
            await self._payloads.aclose()
        finally:
            await _close_stream(self._upstream)


def _contains_secret(data: bytes, secrets: tuple[str, ...]) -> bool:
    return any(len(secret) >= 6 and secret.encode() in data for secret in secrets)


def _scrub_bytes(data: bytes, secrets: tuple[str, ...]) -> bytes:
    """The provider's key never reaches a client, even inside a successful reply."""
    for secret in secrets:
        if len(secret) >= 6:
            data = data.replace(secret.encode(), b"***")
    return data


def _to_dict(result: Any) -> dict[str, Any]:
    data = result if isinstance(result, dict) else result.model_dump(exclude_none=True)
    if not isinstance(data, dict):
        raise UpstreamError("litellm returned a reply that is not an object.")
    return data


async def _close_stream(stream: Any) -> None:
    """Close litellm's stream (and with it the HTTP response) whatever its wrapper."""
    for candidate in (stream, getattr(stream, "completion_stream", None)):
        aclose = getattr(candidate, "aclose", None)
        if aclose is not None:
            await aclose()
            return


def _caused_by(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, types):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _root_cause(exc: BaseException) -> BaseException:
    for _ in range(10):
        cause = exc.__cause__ or exc.__context__
        if cause is None:
            break
        exc = cause
    return exc


def _strip_litellm_prefix(message: str) -> str:
    """'litellm.BadRequestError: AnthropicException - {...}' → '{...}'."""
    if message.startswith("litellm.") and ": " in message:
        message = message.split(": ", 1)[1]
    head, sep, rest = message.partition(" - ")
    return rest if sep and head.endswith(("Exception", "Error")) else message


def _provider_error_body(message: str) -> bytes:
    """The provider's own error JSON inside litellm's message, or the bare text."""
    text = _strip_litellm_prefix(message)
    start = text.find("{")
    if start >= 0:
        try:
            parsed, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            pass
        else:
            return orjson.dumps(parsed)
    return text.encode()


def _retry_after(exc: Exception) -> str | None:
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if headers is not None and headers.get("retry-after"):
            return str(headers.get("retry-after"))
    return None
