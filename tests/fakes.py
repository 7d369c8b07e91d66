"""Small fakes for in-process tests of one stage or the relay: no sockets, no subprocess.

A stage is called as the pipeline calls it, `await stage(ctx, call_next)`, with a context
built here and a `call_next` that answers a fixed Reply (`Answer`), raises, or asks the
mock provider (`via`). Prompt tokens are preset on the context: the tokenizer is tested
on its own, and loading it would cost a stage test its speed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.auth.principal import ANONYMOUS, Principal
from gateway.config.schema import MockConfig, ProviderConfig
from gateway.context import RequestContext
from gateway.formats import Endpoint
from gateway.providers.mock import MockProvider
from gateway.types import Next, Reply, Usage

USER = {"role": "user", "content": "What is the capital of Austria?"}


def context(
    body: dict[str, Any] | None = None,
    *,
    endpoint: Endpoint = "chat",
    alias: str = "m",
    principal: Principal = ANONYMOUS,
    prompt_tokens: int = 10,
) -> RequestContext:
    """A request for `alias`, already routed to it (stages after route see this)."""
    if body is None:
        body = {"input": "hi"} if endpoint == "embeddings" else {"messages": [USER]}
    ctx = RequestContext("req-test", endpoint, {"model": alias, **body}, {}, "127.0.0.1")
    ctx.alias = ctx.target_alias = alias
    ctx.principal = principal
    ctx.prompt_tokens_estimate = prompt_tokens
    return ctx


class Answer:
    """A `call_next` that records the bodies it was sent and answers one fixed Reply (or
    raises `error`)."""

    def __init__(self, usage: Usage | None = None, error: BaseException | None = None) -> None:
        self.usage = usage if usage is not None else Usage(3, 4)
        self.error = error
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, ctx: RequestContext) -> Reply:
        self.bodies.append(dict(ctx.body))
        if self.error is not None:
            raise self.error
        body = {"choices": [{"message": {"role": "assistant", "content": "Vienna"}}]}
        return Reply(body=body, usage=self.usage)


def mock_provider(**options: Any) -> MockProvider:
    return MockProvider("mock", ProviderConfig(kind="mock", mock=MockConfig(**options)))


def via(provider: MockProvider) -> Next:
    """A `call_next` that sends the request to `provider`, as dispatch does."""

    async def call_next(ctx: RequestContext) -> Reply:
        return await provider.send(ctx.endpoint, ctx.body, stream=ctx.stream)

    return call_next


class FakeStream:
    """An upstream stream of fixed events: dicts (sent as JSON), raw bytes, or an exception
    raised where it stands. Counts how often it is closed."""

    def __init__(self, *events: dict[str, Any] | bytes | BaseException) -> None:
        self.events = events
        self.closes = 0
        self._iterator = self._run()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        self.closes += 1
        await self._iterator.aclose()

    async def _run(self) -> AsyncIterator[bytes]:
        for event in self.events:
            if isinstance(event, BaseException):
                raise event
            yield event if isinstance(event, bytes) else orjson.dumps(event)
