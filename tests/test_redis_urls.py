"""Redis Sentinel and Cluster URLs, against real local redis-server processes."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.state.redis import RedisState
from gateway.state.redis_url import limits_uri, parse_nodes_url
from tests.gateway_process import free_port


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


def start(args: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["redis-server", *args], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port).ping():
                return process
        except redis.RedisError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server {args} did not start")


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    running: list[subprocess.Popen[bytes]] = []
    yield running
    for process in running:
        process.kill()
        process.wait(5)


async def round_trip(state: RedisState) -> None:
    try:
        await state.set("k", b"v")
        assert await state.get("k") == b"v"
        assert await state.incr("n", 2) == 2
        assert await state.ping()
    finally:
        await state.aclose()


async def test_sentinel_url_reaches_the_master(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    master, sentinel = free_port(), free_port()
    servers.append(start(["--port", str(master), "--save", "", "--appendonly", "no"], master))
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel}\nsentinel monitor gwmaster 127.0.0.1 {master} 1\ndir {tmp_path}\n"
    )
    servers.append(start([str(conf), "--sentinel"], sentinel))
    await round_trip(RedisState(f"redis+sentinel://127.0.0.1:{sentinel}/gwmaster/0"))
    assert redis.Redis(port=master).get("gw:k") == b"v"  # it landed on the master


async def test_cluster_url_reaches_the_cluster(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    args = ["--port", str(port), "--save", "", "--appendonly", "no", "--cluster-enabled", "yes"]
    # The bus port defaults to port + 10000, past 65535 for a high free port: choose it too.
    args += ["--cluster-port", str(free_port())]
    args += ["--cluster-config-file", str(tmp_path / "nodes.conf"), "--dir", str(tmp_path)]
    servers.append(start(args, port))
    node = redis.Redis(port=port)
    node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    deadline = time.monotonic() + 10
    while b"cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):
        assert time.monotonic() < deadline, "the one-node cluster never became ok"
        time.sleep(0.05)
    await round_trip(RedisState(f"redis+cluster://127.0.0.1:{port}"))
