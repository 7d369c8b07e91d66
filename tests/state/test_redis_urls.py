"""Redis Sentinel and Cluster URLs, against real local redis-server processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.state.backend import Hold
from gateway.state.redis import RedisState
from gateway.state.redis_url import limits_uri, parse_nodes_url, redis_client
from tests.redis_servers import Servers, cluster_server, sentinel_server, stop_all


@pytest.mark.parametrize(
    ("url", "nodes", "password", "path", "tls"),
    [
        (
            "redis+sentinel://s1,s2:26380/mymaster/2",
            [("s1", 26379), ("s2", 26380)],
            None,
            ["mymaster", "2"],
            False,
        ),
        (
            "rediss+cluster://:p%40ss@n1:7000,n2:7001",
            [("n1", 7000), ("n2", 7001)],
            "p@ss",
            [],
            True,
        ),
    ],
)
def test_node_urls_parse(
    url: str, nodes: list[tuple[str, int]], password: str | None, path: list[str], tls: bool
) -> None:
    parsed = parse_nodes_url(url, 26379)
    assert (parsed.nodes, parsed.password, parsed.path, parsed.tls) == (nodes, password, path, tls)


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("redis://h:6379/0", "async+redis://h:6379/0"),
        ("redis+sentinel://s:26379/m", "async+redis+sentinel://s:26379/m"),
        ("redis+cluster://n:7000", "async+redis+cluster://n:7000"),
    ],
)
def test_limits_uri_names_the_same_server(url: str, uri: str) -> None:
    assert limits_uri(url) == uri


@pytest.fixture
def servers() -> Iterator[Servers]:
    running: Servers = []
    yield running
    stop_all(running)


async def round_trip(state: RedisState) -> None:
    try:
        await state.set("k", b"v")
        assert await state.get("k") == b"v"
        assert await state.incr("n", 2) == 2
        assert await state.ping()
        # Budget reservations: one script over hashes in several slots, or hold by hold.
        holds = [Hold("spend:a", {"usd": 1.0}, {"usd": 1.5}), Hold("spend:b", {"usd": 1.0})]
        assert await state.reserve(holds, ttl=60) is None
        assert await state.reserve(holds, ttl=60) == 0  # nothing taken from either
        second_full = [
            Hold("spend:a", {"usd": 0.1}, {"usd": 1.5}),
            Hold("spend:b", {"usd": 1.0}, {"usd": 1.5}),
        ]
        assert await state.reserve(second_full, ttl=60) == 1  # a's share given back
        assert await state.hgetall_many(["spend:a", "spend:b"]) == [{"reserved_usd": 1.0}] * 2
    finally:
        await state.aclose()


async def test_sentinel_url_reaches_the_master(tmp_path: Path, servers: Servers) -> None:
    master, sentinel = sentinel_server(tmp_path, servers, "gwmaster")
    await round_trip(RedisState(f"redis+sentinel://127.0.0.1:{sentinel}/gwmaster/0"))
    assert redis.Redis(port=master).get("gw:k") == b"v"  # it landed on the master


async def test_cluster_url_reaches_the_cluster(tmp_path: Path, servers: Servers) -> None:
    port = cluster_server(tmp_path, servers)
    await round_trip(RedisState(f"redis+cluster://127.0.0.1:{port}"))


async def test_new_connections_do_not_read_redis_py_package_metadata(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py 8 reads its own package metadata for every connection it makes (~0.8 ms
    of the event loop each) unless told what to send; the gateway's clients tell it once."""
    import importlib.metadata

    read = []
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: read.append(name) or real(name))
    client = redis_client(redis_url, pool_size=8, pool_timeout=1.0)
    try:
        connections = [client.connection_pool.make_connection() for _ in range(5)]
        for connection in connections:
            await connection.connect()
            await connection.disconnect()
        assert await client.ping()
    finally:
        await client.aclose()
    assert "redis" not in read
