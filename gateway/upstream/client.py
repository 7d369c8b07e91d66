"""The upstream HTTP/1.1 client: a pool per origin, a request in one write.

Each URL's request line, `host` and the client's fixed headers are encoded once and
kept (`_Route`); a request appends its own headers (if any), `content-length` and the
body, and goes out in a single write on a pooled connection.

A keep-alive connection the upstream closes while it sits idle leaves the pool as soon
as the loop sees the close. The close can also cross a request on the wire (the
upstream's idle timeout ends just as the request is sent): when a *reused* connection
fails before a single byte of the response came back, the request goes once more on a
new connection. It is the one retry here, and the usual one for pooling clients: the
upstream closed a connection it considered idle, so it did not take the request in.
Every other failure (no connection, a timeout, a response cut after its first byte)
is raised to the caller, whose retry policy decides.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from gateway.upstream.connection import Connection
from gateway.upstream.errors import ConnectTimeout, ServerDisconnected
from gateway.upstream.pool import Pool
from gateway.upstream.response import Response

# `identity`: the gateway is bound by its CPU, not by bandwidth to the provider; inflating
# every reply would cost CPU on the event loop, and a compressed stream may be buffered by
# the compressor. A provider `headers` entry can ask for gzip; the body is decoded then.
DEFAULT_HEADERS = {"accept": "*/*", "accept-encoding": "identity"}
IDLE_SECONDS = 15.0  # aiohttp's keep-alive default: idle longer and it is dropped
MAX_ROUTES = 1024
Origin = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float  # to open a connection (TCP and TLS)
    read: float  # between two reads while a response is due
    pool: float  # to wait for a connection when `max_connections` are busy


@dataclass(slots=True)
class _Route:
    pool: Pool
    start: str  # request line and host
    head: bytes  # start + the client's headers, encoded
    headers: dict[str, str]


class HTTPClient:
    def __init__(
        self,
        *,
        timeouts: Timeouts,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 100,
        max_idle: int = 50,
        idle_seconds: float = IDLE_SECONDS,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: the context for https origins; by default the system's CAs, hostnames
        verified (`ssl.create_default_context()`, made at the first https connection)."""
        self._headers = {**DEFAULT_HEADERS, **_lowered(headers or {})}
        self._timeouts = timeouts
        self._max_connections = max_connections
        self._max_idle = max_idle
        self._idle_seconds = idle_seconds
        self._pools: dict[Origin, Pool] = {}
        self._routes: dict[tuple[str, str], _Route] = {}
        self._ssl = tls

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> Response:
        return await self.request("POST", url, body, headers)

    async def request(
        self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Response:
        """Send a request; the response comes back once its head is in (the body streams).
        The caller must `release()` or `close()` it."""
        route = self._routes.get((method, url)) or self._route(method, url)
        head = _head_with(route, headers) if headers else route.head
        data = b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body)
        connection = await route.pool.acquire()
        try:
            return await _exchange(connection, data)
        except ServerDisconnected:
            if not connection.reused or connection.received:
                raise
        return await _exchange(await route.pool.acquire(fresh=True), data)

    def connections_in_use(self) -> int:
        return sum(pool.in_use for pool in self._pools.values())

    def idle_connections(self) -> int:
        return sum(pool.idle for pool in self._pools.values())

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        await asyncio.sleep(0)  # let the transports run their close

    # -- internals -------------------------------------------------------------------------

    def _route(self, method: str, url: str) -> _Route:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        origin = (scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if " " in method + target:
            raise ValueError(f"a space in the request line: {method} {target!r}")
        _check(method, target)
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = Pool(
                partial(self._open, origin=origin),
                limit=self._max_connections,
                max_idle=self._max_idle,
                pool_timeout=self._timeouts.pool,
                idle_seconds=self._idle_seconds,
            )
        start = f"{method} {target} HTTP/1.1\r\nhost: {parts.netloc.rpartition('@')[2]}\r\n"
        route = _Route(pool, start, _encode(start, self._headers), self._headers)
        if len(self._routes) >= MAX_ROUTES:
            self._routes.clear()
        self._routes[(method, url)] = route
        return route

    async def _open(self, pool: Pool, *, origin: Origin) -> Connection:
        scheme, host, port = origin
        if scheme == "https" and self._ssl is None:
            self._ssl = ssl.create_default_context()
        tls = self._ssl if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeouts.connect):
                _, connection = await loop.create_connection(
                    lambda: Connection(self._timeouts.read, pool.put, pool.forget),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
        except TimeoutError:
            raise ConnectTimeout(
                f"no connection to the upstream within {self._timeouts.connect:g} s"
            ) from None
        return connection


async def _exchange(connection: Connection, request: bytes) -> Response:
    try:
        return await connection.send(request)
    except BaseException:
        connection.close()  # a response may still be on its way: never reuse it
        raise


def _head_with(route: _Route, headers: Mapping[str, str]) -> bytes:
    return _encode(route.start, {**route.headers, **_lowered(headers)})


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    _check(*lowered, *lowered.values())
    return lowered


def _encode(start: str, headers: Mapping[str, str]) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (start + lines).encode()


def _check(*parts: str) -> None:
    """No part of a request head may end a line or the head early."""
    for part in parts:
        if "\r" in part or "\n" in part or "\0" in part:
            raise ValueError(f"a line break in a request head part: {part!r}")
