"""An audit hook that refuses (and records) connections and DNS lookups beyond loopback.

Audit hooks are process-wide and cannot be removed, so the guard checks only while
`active`; it sees every socket, from any thread or library (litellm, tiktoken, httpx).
"""

from __future__ import annotations

import sys
from typing import Any

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class NetworkGuard:
    def __init__(self, *, active: bool = False) -> None:
        self.active = active
        self.attempts: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "socket.connect" and isinstance(args[1], tuple):
            host = args[1][0]
        elif event == "socket.getaddrinfo":
            host = args[0].decode() if isinstance(args[0], bytes) else args[0]
        else:
            return
        if host is not None and host not in LOOPBACK:
            self.attempts.append(str(host))
            raise OSError("network beyond loopback refused in tests")
