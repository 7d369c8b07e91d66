"""A hung Redis (SIGSTOP): every Redis user of a process shares one health view.

After the first call that times out, the key store, limiter, budgets, exact cache and the
rest go to their fallbacks at once: N sequential requests cost one timeout, not N (counted
by the process's health view: calls that failed for want of Redis, calls skipped). After
SIGCONT the one probe sees Redis answer, shared limits return, and the spend of the
requests served during the outage, queued in process, is written.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import redis

from gateway.auth.keys import hash_key
from tests.hardening.harness import CHAT, gateway_yaml, running_gateway, wait_until
from tests.redis_servers import Servers, plain_server, stop_all

KEY = "sk-test-hung-redis-0123456789"
REQUESTS_WHILE_HUNG = 10


@pytest.fixture
def redis_port() -> Iterator[tuple[int, Servers]]:
    servers: Servers = []
    try:
        yield plain_server(servers), servers
    finally:
        for process in servers:  # a stopped server must resume to exit
            process.send_signal(signal.SIGCONT)
        stop_all(servers)


def hung_yaml(port: int) -> str:
    extra = f"""
state: {{backend: redis, redis_url: 'redis://127.0.0.1:{port}/0'}}
cache: {{enabled: true}}
pricing:
  mock-small: {{input_per_mtok: 1, output_per_mtok: 1}}
auth:
  keys:
    - id: hung
      hash: "{hash_key(KEY)}"
      limits: {{requests: ['1000/minute'], tokens: ['1000000/minute']}}
      budget: {{usd_per_day: 100}}
limits: {{failed_auth_ip: []}}
"""
    return gateway_yaml("http://127.0.0.1:9", extra=extra)


def chat(url: str, i: int) -> int:
    body = {"model": "mock-small", "messages": [{"role": "user", "content": f"q {i}"}]}
    headers = {"authorization": f"Bearer {KEY}"}
    return httpx.post(url + CHAT, json=body, headers=headers, timeout=30).status_code


def spent_requests(client: redis.Redis) -> float:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    return float(client.hget(f"gw:spend:key:hung:day:{day}", "requests") or 0)


def test_hung_redis_costs_one_timeout_in_all_and_recovers(
    redis_port: tuple[int, Servers],
) -> None:
    port, (server,) = redis_port
    client = redis.Redis(port=port)
    with running_gateway(hung_yaml(port)) as gw:
        assert [chat(gw.url, i) for i in range(3)] == [200] * 3
        assert wait_until(lambda: spent_requests(client) == 3, 5)
        health = gw.runtime.services.state.health
        skipped = gw.metric("gateway_redis_skipped_total")

        server.send_signal(signal.SIGSTOP)  # the socket stays open, nothing answers
        try:
            statuses = [chat(gw.url, 100 + i) for i in range(REQUESTS_WHILE_HUNG)]
            failed, outages = health.failures, health.outages
        finally:
            server.send_signal(signal.SIGCONT)
        skipped = gw.metric("gateway_redis_skipped_total") - skipped
        print(
            f"\nhung Redis, {REQUESTS_WHILE_HUNG} requests: {failed} calls failed, "
            f"{skipped:.0f} skipped"
        )
        assert statuses == [200] * REQUESTS_WHILE_HUNG  # every user fell back
        assert outages == 1 and failed <= 2, (outages, failed)  # not one per request
        assert skipped >= REQUESTS_WHILE_HUNG

        assert wait_until(lambda: httpx.get(gw.url + "/ready").json()["status"] == "ready", 10)
        assert health.up and not gw.runtime.services.limiter.degraded
        skipped = gw.metric("gateway_redis_skipped_total")
        assert chat(gw.url, 999) == 200
        assert gw.metric("gateway_redis_skipped_total") == skipped  # Redis serves again
        # The spend of the requests served while Redis hung was queued, then written.
        total = 3 + REQUESTS_WHILE_HUNG + 1
        assert wait_until(lambda: spent_requests(client) == total, 10), spent_requests(client)
