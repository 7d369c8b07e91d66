"""The gateway's upstream HTTP/1.1 client, built for its one job: many small JSON requests
and long SSE streams to a few origins, over pooled keep-alive connections.

asyncio Protocols feed the bytes straight into httptools (llhttp, the parser uvicorn
uses); nothing sits between the socket and the parser but one callback. It replaced
aiohttp on the provider path, measured side by side against it (benchmarks/README.md,
"Upstream client").

    client.py      HTTPClient: routes, pools per origin, the one retry (a stale keep-alive)
    pool.py        Pool: the connections to one origin, the limit, waiting for a free one
    connection.py  Connection: one socket, the parser, the read timeout
    response.py    Response: status, headers, the body read whole or streamed, release/close
    errors.py      what it raises: TimeoutError and ConnectionError subclasses
"""

from gateway.upstream.client import HTTPClient, Timeouts
from gateway.upstream.errors import (
    ConnectTimeout,
    InvalidResponse,
    PoolTimeout,
    ReadTimeout,
    ServerDisconnected,
)
from gateway.upstream.response import Response

__all__ = [
    "ConnectTimeout",
    "HTTPClient",
    "InvalidResponse",
    "PoolTimeout",
    "ReadTimeout",
    "Response",
    "ServerDisconnected",
    "Timeouts",
]
