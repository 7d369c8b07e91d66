"""The few core types everything else is built from: Usage, Reply, Provider, Stage."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from gateway.accounting.usage_bounds import token_count
from gateway.formats import Endpoint as Endpoint  # re-exported beside the core types
from gateway.formats import Ingress as Ingress
from gateway.shielding import run_shielded

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.errors import GatewayError

log = logging.getLogger("gateway")


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # True when the provider never reported usage (e.g. a cut stream)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage | None:
        if not isinstance(usage, dict):
            return None
        prompt = token_count(usage.get("prompt_tokens") or 0, "prompt_tokens")
        completion = token_count(usage.get("completion_tokens") or 0, "completion_tokens")
        if prompt is None or completion is None:
            return None  # unreadable: estimated where the reply is a stream
        return cls(prompt, completion)


class Stream(Protocol):
    """An upstream reply's events: iterated once, and closed (releasing the upstream) by
    whoever owns it, also when iteration never started. Async generators are Streams."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def __anext__(self) -> Awaitable[bytes]: ...

    async def aclose(self) -> None: ...


CompletionCallback = Callable[["Reply"], Awaitable[None]]
ChunkTap = Callable[[dict[str, Any]], None]


@dataclass(eq=False, slots=True)
class Reply:
    """A complete JSON reply (`body`) or a stream of SSE data payloads (`stream`).

    A stream yields the JSON bytes of each `data:` event, without the final `[DONE]`;
    it ends normally only when the provider finished the reply, and raises a
    GatewayError when the provider fails. Whoever needs the end of the reply (token
    settlement, cache store, metrics) registers `on_complete`; `close()` runs those
    callbacks exactly once, after the upstream is released, whether the reply finished,
    failed or the client went away.
    """

    body: dict[str, Any] | None = None
    stream: Stream | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    usage: Usage | None = None
    completed: bool = False  # the whole reply reached the client
    error: GatewayError | None = None
    taps: list[ChunkTap] = field(default_factory=list)  # see `tap`
    # The wire format of `body` / `stream`: canonical ("openai") unless a deployment answered
    # natively in the client's own format, which is then relayed without re-rendering.
    format: Ingress = "openai"
    _callbacks: list[CompletionCallback] = field(default_factory=list)
    _closed: bool = False

    @property
    def is_stream(self) -> bool:
        return self.stream is not None

    def on_complete(self, callback: CompletionCallback) -> None:
        self._callbacks.append(callback)

    def tap(self, observer: ChunkTap) -> None:
        """See each parsed chunk of a stream as the relay passes it on (the cache assembles
        a storable copy, the access log the completion text); nothing is kept otherwise."""
        self.taps.append(observer)

    async def close(self) -> None:
        """Release the upstream and run completion callbacks; safe to call many times."""
        if self._closed:
            return
        self._closed = True
        # Shielded: this runs in `finally` blocks of cancelled tasks (client disconnects),
        # and tokens must still be settled and upstream connections still released.
        if self.stream is not None:
            # A stream's close may run anyio code (httpx under litellm): the whole shield,
            # entered first (see gateway/shielding.py).
            with anyio.CancelScope(shield=True):
                try:
                    await self.stream.aclose()
                except Exception:  # a failing close must not skip the callbacks
                    log.exception("closing upstream stream failed")
        await run_shielded(self._run_callbacks())

    async def _run_callbacks(self) -> None:
        # Registration order: inner stages registered first and finish first, so the
        # outermost (observe: access log, request span) sees everything settled.
        for callback in self._callbacks:
            try:
                await callback(self)
            except Exception:
                log.exception("completion callback failed")


class Provider(Protocol):
    """One API family (OpenAI-compatible, litellm, mock) behind one method."""

    async def send(self, endpoint: Endpoint, body: dict[str, Any], *, stream: bool) -> Reply:
        """Send `body` (its `model` already set to the upstream name); raise GatewayError."""
        ...

    async def aclose(self) -> None: ...


class NativeProvider(Provider, Protocol):
    """A provider that also speaks a client format natively: requests in that format are
    sent with `send_native` (the client's raw body, only the pipeline's decisions applied)
    and answered in it (`Reply.format`)."""

    ingress: Ingress

    async def send_native(
        self, ctx: RequestContext, body: dict[str, Any], *, stream: bool
    ) -> Reply: ...


Next = Callable[["RequestContext"], Awaitable[Reply]]


class Stage(Protocol):
    """A pipeline stage: answer by itself, or call on and act on what comes back."""

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply: ...
