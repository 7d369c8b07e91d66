"""200 clients leave mid-stream at random points: every upstream connection is closed
within a second, every request is settled (metrics, access log), no task is left behind."""

from __future__ import annotations

import asyncio
import random
import time

import orjson
import pytest

from tests.hardening.clients import leave_after_events, post_bytes
from tests.hardening.harness import (
    CHAT,
    MESSAGES,
    capture_logs,
    gateway_yaml,
    running_gateway,
    still_serves,
    wait_until,
)
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

CLIENTS = 200


@pytest.mark.parametrize(
    ("abort", "as_served"),
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["fin", "rst", "fin-as-served", "rst-as-served"],
)
def test_200_clients_leaving_mid_stream_close_upstream_settle_and_leave_no_task(
    upstream_server: tuple[FakeUpstream, RunningServer], abort: bool, as_served: bool
) -> None:
    """As served, the connection itself tells the stream its client left; on plain
    uvicorn a future over `receive()` does."""
    fake, upstream_http = upstream_server
    fake.reset(chunks=400, chunk_delay=0.01)  # 4 s per stream: every client leaves early
    request = post_bytes(CHAT, {"model": "up", "messages": MESSAGES, "stream": True})
    rng = random.Random(7)
    cut_points = [rng.randrange(0, 40) for _ in range(CLIENTS)]  # 0: before the first event
    with (
        running_gateway(
            gateway_yaml(upstream_http.url, read=5, connect=5), as_served=as_served
        ) as gw,
        capture_logs() as logs,
    ):
        still_serves(gw.url)  # warm up, then count the server's tasks at rest
        tasks_before = gw.task_count()
        requests_before = gw.metric("gateway_requests_total")

        async def crowd() -> list[tuple[int, float]]:
            port = gw.server.port
            calls = [leave_after_events(port, request, k, abort=abort) for k in cut_points]
            return await asyncio.gather(*calls)

        results = asyncio.run(crowd())
        last_left = max(left for _, left in results)

        assert upstream_http.wait_for_connections(0, timeout=1.0) == 0
        closed_within = time.monotonic() - last_left
        # the fake notices a closed connection a little after the socket is gone
        assert wait_until(lambda: len(fake.stream_closed_at) == len(fake.requests), 1.0)
        assert max(fake.stream_closed_at, default=last_left) - last_left < 1.0

        assert wait_until(lambda: gw.metric("gateway_requests_total") - requests_before == CLIENTS)
        assert gw.metric("gateway_in_flight_requests") == 0
        access = [orjson.loads(line) for line in logs.access_lines()]
        assert len([e for e in access if e["model"] == "up"]) == CLIENTS
        done = [e for e in access if e["model"] == "up" and e["completed"]]
        assert not done, [(e["status"], e.get("error"), e["duration_ms"]) for e in done[:5]]
        assert gw.metric("gateway_tokens_total", model="up", direction="output") > 0
        assert wait_until(lambda: gw.task_count() == tasks_before), gw.task_count()
        still_serves(gw.url)
        print(
            f"\n{CLIENTS} clients ({'RST' if abort else 'FIN'}): upstream requests "
            f"{len(fake.requests)}, upstream closed {len(fake.stream_closed_at)}, all upstream "
            f"connections closed {closed_within * 1000:.0f} ms after the last client left; "
            f"tasks before/after {tasks_before}/{gw.task_count()}"
        )


def test_clients_leaving_while_upstream_is_still_thinking_release_every_connection(
    upstream_server: tuple[FakeUpstream, RunningServer],
) -> None:
    """The client is gone before the stream starts: the relay never runs, yet the
    upstream response (already opened) must still be closed and the request settled."""
    fake, upstream_http = upstream_server
    fake.reset(chunks=400, chunk_delay=0.01, hang_seconds=0.3)
    request = post_bytes(CHAT, {"model": "up", "messages": MESSAGES, "stream": True})
    with running_gateway(gateway_yaml(upstream_http.url, read=5, connect=5)) as gw:
        still_serves(gw.url)
        tasks_before = gw.task_count()

        async def leave_early(port: int) -> None:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            await asyncio.sleep(0.1)  # gone while the gateway waits for the upstream's headers
            writer.close()

        async def crowd() -> None:
            await asyncio.gather(*(leave_early(gw.server.port) for _ in range(20)))

        asyncio.run(crowd())
        assert wait_until(lambda: len(fake.requests) == 20)
        assert upstream_http.wait_for_connections(0, timeout=1.5) == 0
        assert wait_until(lambda: gw.metric("gateway_requests_total", model="up") == 20)
        assert gw.metric("gateway_in_flight_requests") == 0
        assert wait_until(lambda: gw.task_count() == tasks_before), gw.task_count()
