"""What the upstream client raises: builtin exception kinds, so callers catch them as
`TimeoutError` and `OSError` (the providers map both into the gateway's error tree).

OSError
├── TimeoutError
│   ├── ConnectTimeout       no connection within `connect` seconds
│   ├── PoolTimeout          every pooled connection stayed busy for `pool` seconds
│   └── ReadTimeout          no byte from the upstream for `read` seconds
└── ConnectionError
    ├── ServerDisconnected   the upstream closed before the response was complete
    └── InvalidResponse      not HTTP/1.1 this client can read (bad framing, encoding)
Connection failures (refused, DNS, TLS) pass through as the OSError the loop raised.
"""

from __future__ import annotations


class ConnectTimeout(TimeoutError):
    pass


class PoolTimeout(TimeoutError):
    pass


class ReadTimeout(TimeoutError):
    pass


class ServerDisconnected(ConnectionError):
    pass


class InvalidResponse(ConnectionError):
    pass
