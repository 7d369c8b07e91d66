"""The limiter on every Redis URL form of the state backend: plain, Sentinel and Cluster,
against real local redis-server processes. Exact counting, one shared window per rule, and
recovery of the scripts after the server lost them (SCRIPT FLUSH ~ a restart)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from limits import parse

from gateway.observability.metrics import Metrics
from gateway.ratelimit.limiter import Limiter, Rule
from tests.redis_servers import Servers, cluster_server, plain_server, sentinel_server, stop_all

MakeURL = Callable[[Path, Servers], tuple[str, list[int]]]


@pytest.fixture
def servers() -> Iterator[Servers]:
    running: Servers = []
    yield running
    stop_all(running)


def sentinel_url(tmp_path: Path, servers: Servers) -> tuple[str, list[int]]:
    master, sentinel = sentinel_server(tmp_path, servers, "gwlimits")
    return f"redis+sentinel://127.0.0.1:{sentinel}/gwlimits/0", [master]


def cluster_url(tmp_path: Path, servers: Servers) -> tuple[str, list[int]]:
    port = cluster_server(tmp_path, servers)
    return f"redis+cluster://127.0.0.1:{port}", [port]


def plain_url(tmp_path: Path, servers: Servers) -> tuple[str, list[int]]:
    port = plain_server(servers)
    return f"redis://127.0.0.1:{port}/0", [port]


@pytest.mark.parametrize("make_url", [plain_url, sentinel_url, cluster_url])
async def test_limits_are_exact_on_every_redis_url_form(
    tmp_path: Path, servers: Servers, make_url: MakeURL
) -> None:
    url, ports = make_url(tmp_path, servers)
    prefix = f"t-{uuid.uuid4().hex[:8]}:"
    one, two = Limiter(url, prefix, Metrics()), Limiter(url, prefix, Metrics())
    per_key = Rule("key", "requests", parse("3/minute"), "k1")
    tokens = Rule("key", "tokens", parse("100/minute"), "k1")
    everyone = Rule("global", "requests", parse("5/minute"), "all")
    try:
        allowed = []
        for limiter in (one, two, one, two, one):  # two instances share the windows
            decision = await limiter.acquire([(per_key, 1), (tokens, 10), (everyone, 1)])
            allowed.append(decision.allowed)
            assert not limiter.degraded, "the Redis path failed; the fallback decided"
        assert allowed == [True, True, True, False, False]
        assert decision.refused == per_key and decision.retry_after() >= 1
        for port in ports:  # as after a restart: the scripts are gone, counts are kept
            redis.Redis(port=port).script_flush()
        refused = await two.acquire([(Rule("key", "requests", parse("3/minute"), "k1"), 1)])
        assert not refused.allowed and not two.degraded
        fresh = await two.acquire([(Rule("key", "requests", parse("3/minute"), "k2"), 1)])
        assert fresh.allowed and fresh.windows[0].remaining == 2
        stored = [k for p in ports for k in redis.Redis(port=p).scan_iter(f"{prefix}*")]
        assert stored and all(k.startswith(f"{prefix}limits:{{".encode()) for k in stored)
    finally:
        await one.aclose()
        await two.aclose()
