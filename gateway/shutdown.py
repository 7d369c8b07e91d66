"""Graceful shutdown. On SIGTERM (or SIGINT) /ready turns unready at once; after
server.unready_seconds (time for load balancers to notice) the server (uvicorn, or
gunicorn's uvicorn worker) stops accepting and lets in-flight requests and streams
finish for up to server.shutdown_grace_seconds before it closes."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType

from gateway.runtime import Runtime

log = logging.getLogger("gateway")
DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def drain_on_signals(runtime: Runtime) -> None:
    """Chain in front of the server's own handlers (installed before the lifespan runs),
    so the server still does its graceful shutdown after we mark the instance draining."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach only the main thread (tests run servers in threads)
    loop = asyncio.get_running_loop()
    for sig in DRAIN_SIGNALS:
        previous = signal.getsignal(sig)
        signal.signal(sig, _draining_handler(runtime, loop, previous))


def _draining_handler(runtime: Runtime, loop: asyncio.AbstractEventLoop, previous: object):  # type: ignore[no-untyped-def]
    def handle(sig: int, frame: FrameType | None) -> None:
        delay = runtime.config.server.unready_seconds
        if not runtime.draining:
            runtime.draining = True
            log.info("shutting down: unready, then draining", extra={"signal": sig})
        else:
            delay = 0.0  # a second signal: stop accepting now
        if delay > 0:
            loop.call_later(delay, _pass_on, previous, sig)
        else:
            _pass_on(previous, sig)
        # Streams still open shortly before the grace period ends get a clean ending.
        grace = runtime.config.server.shutdown_grace_seconds
        loop.call_later(delay + grace - min(1.0, grace / 2), runtime.stop_streams.set)

    return handle


def _pass_on(previous: object, sig: int) -> None:
    if callable(previous):
        previous(sig, None)
    else:  # nobody else handles it: let the default action (exit) happen
        signal.signal(sig, previous)  # type: ignore[arg-type]
        signal.raise_signal(sig)
