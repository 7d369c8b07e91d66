"""Connection limits the HTTP server does not enforce, applied before the app sees a byte.

uvicorn's httptools protocol buffers a request head of any size (three 100 MB header
values grew a worker from 345 MB to 2.1 GB), waits for ever on a head or a body that never
completes, and accepts connections until the process runs out of file descriptors (valid
requests then failed with nothing logged). `GuardedProtocol` is that protocol with:

- head size: a request line and headers past `max_header_bytes`, or one line past
  `max_header_line_bytes`, get 431 and the connection is closed. Memory stays bounded by
  the limit plus one socket read (256 KiB).
- header timeout: each request head must arrive within `header_timeout_seconds` of the
  connection opening (or of its first byte on a kept-alive connection); else 408, close.
- body timeout: the whole body within `body_timeout_seconds` of the head; else 408, close.
- keep-alive idle timeout: uvicorn's own timer (`keepalive_seconds`).
- connection cap: past `max_connections`, the oldest idle connection (kept alive between
  requests, or still without a complete head) is closed to make room; when none is idle,
  the newcomer gets 503. Logged (at most every 10 s, with counts) and counted in
  `gateway_connection_limits_total{reason}`, as is every limit above.

Its transport also coalesces the writes of one loop turn (`write_coalescing.py`).

Enforced in the protocol rather than by switching to h11 (which bounds the head but has no
header or body timeouts): see benchmarks/bench_http_guard.py for the measured cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.config.schema import ServerConfig
from gateway.errors import GatewayError, HeadersTooLarge, RequestTimeout, ServerAtCapacity
from gateway.lean_connection import Flag, FlowControl, Pipeline
from gateway.write_coalescing import CoalescingTransport

log = logging.getLogger("gateway")
LOG_EVERY_SECONDS = 10.0
LINGER_SECONDS = 2.0  # after a refusal, input is discarded this long so the client reads it
CAP_LINGER_SECONDS = 0.5
REASONS = {431: "Request Header Fields Too Large", 408: "Request Timeout", 503: "Unavailable"}


class Phase(enum.Enum):
    HEAD = "head"  # waiting for, or reading, a request head
    BODY = "body"  # the head arrived; reading its body
    BUSY = "busy"  # the app has the request
    IDLE = "idle"  # kept alive between requests


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    max_header_line_bytes: int
    header_timeout: float
    body_timeout: float
    max_connections: int

    @classmethod
    def from_config(cls, server: ServerConfig) -> ConnectionLimits:
        return cls(
            max_header_bytes=server.max_header_bytes,
            max_header_line_bytes=server.max_header_line_bytes,
            header_timeout=server.header_timeout_seconds,
            body_timeout=server.body_timeout_seconds,
            max_connections=server.max_connections or default_max_connections(),
        )


def default_max_connections() -> int:
    """Half the file-descriptor limit less 32: a proxied request also holds an upstream
    socket, and Redis, logs and the metrics directory need a few."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, soft // 2 - 32)


@dataclass
class GuardedHTTP:
    """The protocol factory uvicorn calls per connection (`http=`); one per process.

    Picklable (uvicorn sends its config to spawned workers): the metrics are found on the
    app the first time a limit is hit."""

    limits: ConnectionLimits
    _counts: dict[str, int] = field(default_factory=dict)
    _logged_at: float = 0.0
    _metrics: Any = None

    def __call__(self, **kwargs: Any) -> GuardedProtocol:
        return GuardedProtocol(self, **kwargs)

    def admit(self, conn: GuardedProtocol) -> None:
        """Called with each new connection: keep the process under its connection cap."""
        open_ = conn.connections
        if len(open_) <= self.limits.max_connections:
            return
        idle = [c for c in open_ if isinstance(c, GuardedProtocol) and c is not conn and c.idle()]
        if idle:
            min(idle, key=lambda c: c.since).transport.close()
            self.hit("cap_closed_idle", conn, len(open_))
        else:
            # A short linger: at the cap a refused connection must give its descriptor back
            # soon, yet long enough for the client's request to arrive and the 503 to be read.
            refusal = ServerAtCapacity("The gateway is at its connection limit; retry.")
            conn.refuse(refusal, CAP_LINGER_SECONDS)
            self.hit("cap_refused", conn, len(open_))

    def hit(self, reason: str, conn: GuardedProtocol, open_count: int = 0) -> None:
        self._counts[reason] = self._counts.get(reason, 0) + 1
        metrics = self._metrics or _metrics_of(conn.app)
        if metrics is not None:
            self._metrics = metrics
            metrics.connection_limits.labels(reason).inc()
        if reason.startswith("cap_"):
            now = time.monotonic()
            if now - self._logged_at >= LOG_EVERY_SECONDS:
                self._logged_at = now
                log.warning(
                    "connection cap reached: %d connections open, server.max_connections=%d; "
                    "closed idle: %d, refused: %d (counts since the last such line)",
                    open_count,
                    self.limits.max_connections,
                    self._counts.pop("cap_closed_idle", 0),
                    self._counts.pop("cap_refused", 0),
                )
        else:
            log.debug("connection closed at a limit: %s", reason)


class GuardedProtocol(HttpToolsProtocol):
    # Slots: uvicorn's own attributes then stay in a key-sharing instance dict (ours on top
    # made it a dict of its own, 1.6 KB a connection).
    __slots__ = (
        "deadline",
        "guard",
        "head_bytes",
        "limit",
        "limits",
        "oversized",
        "phase",
        "refused",
        "since",
        "timer",
    )

    def __init__(self, guard: GuardedHTTP, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = Pipeline()  # type: ignore[assignment]
        self.guard = guard
        self.limits = guard.limits
        self.phase = Phase.HEAD
        self.since = 0.0  # loop time this connection last became idle (eviction order)
        self.head_bytes = 0  # raw bytes of the head so far (a line may still be buffered)
        self.oversized = False
        self.refused = False
        # One lazy timer per connection: arming a limit only moves `deadline`; the timer is
        # re-set when it fires early, or replaced when the new deadline is sooner.
        self.timer: asyncio.TimerHandle | None = None
        self.deadline: float | None = None
        self.limit = ""

    # -- connection ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
        self.flow = FlowControl(self.transport, self.loop)  # type: ignore[assignment]
        self.since = self.loop.time()
        self._arm(self.limits.header_timeout, "header_timeout")
        self.guard.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # lingering after a refusal: input is discarded, never buffered
        if self.phase is Phase.IDLE:
            self.phase = Phase.HEAD
            self._arm(self.limits.header_timeout, "header_timeout")
        if self.phase is not Phase.BODY:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.oversized or (
            self.phase is Phase.HEAD and self.head_bytes > self.limits.max_header_bytes
        ):
            self.guard.hit("headers_too_large", self)
            limit = self.limits.max_header_bytes
            line = self.limits.max_header_line_bytes
            message = f"The request head is larger than {limit} bytes (or a line than {line})."
            self.refuse(HeadersTooLarge(message))

    def idle(self) -> bool:
        """Between requests or still without a complete head: safe to close at the cap."""
        waiting = self.cycle is None or self.cycle.response_complete
        return self.phase in (Phase.IDLE, Phase.HEAD) and waiting and not self.refused

    # -- parser callbacks ---------------------------------------------------------------
    def on_headers_complete(self) -> None:
        # Checked once the parser has the whole head (a head that arrives in one read can
        # exceed the limits); while it is arriving, `head_bytes` bounds what is buffered.
        longest = max((len(name) + len(value) for name, value in self.headers), default=0)
        total = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        line_limit = self.limits.max_header_line_bytes
        if max(longest, len(self.url)) > line_limit or total > self.limits.max_header_bytes:
            self.oversized = True
            return  # refused after this feed; the app never sees the request
        self.phase = Phase.BODY
        self.head_bytes = 0
        self._arm(self.limits.body_timeout, "body_timeout")
        cycle = self.cycle
        super().on_headers_complete()
        if self.cycle is not cycle:  # a new request (its task is made, not yet started)
            self.cycle.message_event = Flag(self.loop)  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        if not self.oversized:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.oversized:
            return
        self._disarm()
        # No limit runs while the app has the request; the next head arms a new timer. (Left
        # armed, it is ~0.5 KB that every open stream holds.)
        self._stop_timer()
        self.phase = Phase.BUSY
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # The whole response is written: it leaves now, not at the end of the loop turn,
        # which would wait for the app's work after its last send (settlement, metrics,
        # the access log: about 0.1 ms a request in the production shape).
        self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()
        if self.phase is Phase.BUSY and not self.pipeline:
            self.phase = Phase.IDLE
            self.since = self.loop.time()

    # -- limits -------------------------------------------------------------------------
    def _arm(self, seconds: float, reason: str) -> None:
        self.deadline = self.loop.time() + seconds
        self.limit = reason
        if self.timer is not None and self.timer.when() > self.deadline:
            self.timer.cancel()
            self.timer = None
        if self.timer is None:
            self.timer = self.loop.call_at(self.deadline, self._check)

    def _disarm(self) -> None:
        self.deadline = None

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check(self) -> None:
        self.timer = None
        if self.deadline is None:
            return
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._check)
            return
        self.deadline = None
        self._expired(self.limit)

    def _expired(self, reason: str) -> None:
        if self.transport.is_closing() or self.refused:
            return
        self.guard.hit(reason, self)
        if reason == "header_timeout" and self.head_bytes == 0:
            self.transport.close()  # never sent a byte: nothing to answer
            return
        what = "request head" if reason == "header_timeout" else "request body"
        self.refuse(RequestTimeout(f"The {what} did not arrive in time."))

    def refuse(self, err: GatewayError, linger: float = LINGER_SECONDS) -> None:
        """Answer `err` and close; input is read and dropped for `linger` seconds first, so
        a client still sending gets the answer rather than a reset."""
        self.refused = True
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's request (a body cut short) ends
            self.cycle.message_event.set()
        body = orjson.dumps(err.to_body())
        head = (
            f"HTTP/1.1 {err.http_status} {REASONS.get(err.http_status, 'Error')}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        with contextlib.suppress(NotImplementedError, OSError):
            self.transport.write_eof()
        self.loop.call_later(linger, self.transport.close)


def _metrics(app: Any) -> Any:
    return getattr(getattr(getattr(app, "state", None), "runtime", None), "metrics", None)


def _metrics_of(app: Any) -> Any:
    """The gateway's Metrics on the served app (uvicorn may wrap it in middleware)."""
    for _ in range(4):
        found = _metrics(app)
        if found is not None:
            return found
        app = getattr(app, "app", None)
    return None
