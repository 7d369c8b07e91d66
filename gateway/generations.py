"""What a config reload swaps: counting the requests each pipeline still serves, lending
unchanged providers to the new pipeline, and closing the old one's leftovers once idle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from gateway.config.schema import GatewayConfig
from gateway.context import RequestContext
from gateway.errors import ShuttingDown
from gateway.providers.registry import build_provider
from gateway.services import Services
from gateway.types import Next, Provider, Reply, Stream

log = logging.getLogger("gateway")


class InFlight:
    """Requests a pipeline still serves; a stream counts until its reply closes."""

    def __init__(self) -> None:
        self.count = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def enter(self) -> None:
        self.count += 1
        self.idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count <= 0:
            self.count = 0
            self.idle.set()

    async def left(self, done: Reply) -> None:
        """A reply's completion callback (a bound method: less to hold than a closure)."""
        self.leave()

    def track(self, handle: Next, stop_streams: asyncio.Event) -> Next:
        """Count each request until its reply closes; streams end at `stop_streams`."""

        async def call(ctx: RequestContext) -> Reply:
            self.enter()
            try:
                reply = await handle(ctx)
            except BaseException:
                self.leave()
                raise

            reply.on_complete(self.left)
            if reply.stream is not None:
                reply.stream = EndOn(reply.stream, stop_streams)
            return reply

        return call


class EndOn:
    """Pass a stream through until `stop` is set (the shutdown grace period is nearly
    over); then end it the documented way, an error event and [DONE], rather than let the
    server cut the connection. Checked between events, before the next is read: `__anext__`
    hands back the stream's own awaitable (an async generator here cost a frame and a
    resumption per event)."""

    __slots__ = ("_read", "_stop", "_stream")

    def __init__(self, stream: Stream, stop: asyncio.Event) -> None:
        self._stream = stream
        self._stop = stop
        self._read = False

    def __aiter__(self) -> EndOn:
        return self

    def __anext__(self) -> Awaitable[bytes]:
        if self._read and self._stop.is_set():
            raise ShuttingDown("The gateway is shutting down; the stream was ended early.")
        self._read = True
        return self._stream.__anext__()

    async def aclose(self) -> None:
        await self._stream.aclose()


def reuse_providers(
    old: GatewayConfig, providers: Mapping[str, Provider], new: GatewayConfig
) -> dict[str, Provider]:
    """Providers for `new`: the running adapter (and its connection pool) where the
    provider's config did not change, a fresh one where it did or is new."""
    result: dict[str, Provider] = {}
    for name, config in new.providers.items():
        running = providers.get(name)
        if running is not None and old.providers.get(name) == config:
            result[name] = running
        else:
            result[name] = build_provider(name, config)
    return result


def retire_when_idle(
    in_flight: InFlight, closers: list[Callable[[], Awaitable[None]]]
) -> asyncio.Task[None]:
    """Close what only the old pipeline used, after its last request has finished."""

    async def retire() -> None:
        await in_flight.idle.wait()
        for close in closers:
            try:
                await close()
            except Exception:
                log.exception("closing a retired component failed")

    return asyncio.create_task(retire())


def leftovers(old: Services, new: Services) -> list[Callable[[], Awaitable[None]]]:
    """Close functions for what `old` had and `new` does not reuse."""
    kept = {id(p) for p in new.providers.values()}
    closers: list[Callable[[], Awaitable[None]]]
    closers = [p.aclose for p in old.providers.values() if id(p) not in kept]
    if old.state is not new.state:
        closers.append(old.state.aclose)
    if old.limiter is not None and old.limiter is not new.limiter:
        closers.append(old.limiter.aclose)
    if old.cache is not None:
        closers += old.cache.closers_replaced_by(new.cache)
    if old.records is not None and old.records is not new.records:
        closers.append(old.records.aclose)
    return closers
