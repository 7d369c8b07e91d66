"""Real HTTP servers on 127.0.0.1 for tests: uvicorn in a thread, on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.types import ASGIApp


@dataclass
class RunningServer:
    server: uvicorn.Server
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open_connections(self) -> int:
        return len(self.server.server_state.connections)

    def wait_for_connections(self, count: int, timeout: float = 2.0) -> int:
        """Wait until at most `count` connections are open; return how many are."""
        deadline = time.monotonic() + timeout
        while self.open_connections() > count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.open_connections()


@contextmanager
def serve_in_thread(app: ASGIApp, **options: object) -> Iterator[RunningServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings: dict[str, object] = {
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 2,
        **options,
    }
    config = uvicorn.Config(app, **settings)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server failed to start")
        time.sleep(0.01)
    try:
        yield RunningServer(server, port)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def seconds_until_upstream_closes(
    gateway_url: str, model: str, closed_at: list[float], limit: float = 1.0
) -> float:
    """Start a stream through the gateway, leave after the first event, and return how long
    the upstream took to record its stream closed (`closed_at`; `limit` + 1 if it never did)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{gateway_url}/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                break
    left_at = time.monotonic()
    while not closed_at and time.monotonic() < left_at + limit:
        time.sleep(0.01)
    return closed_at[0] - left_at if closed_at else limit + 1
