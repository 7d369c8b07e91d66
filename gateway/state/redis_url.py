"""Redis URLs the gateway accepts, and the client each one needs.

    redis://[:password@]host:6379/0      rediss://… (TLS)     unix:///path.sock?db=0
    redis+sentinel://[:password@]sentinel1:26379,sentinel2:26379/<service>[/<db>]
    redis+cluster://[:password@]node1:6379,node2:6379
(`rediss+sentinel://`, `rediss+cluster://` for TLS). The password is the data nodes' one.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.state.health import PoolExhausted

SENTINEL_PORT = 26379
REDIS_PORT = 6379


@dataclass(frozen=True)
class NodesURL:
    """A URL naming several nodes, which urllib cannot parse (commas in the netloc)."""

    tls: bool
    password: str | None
    nodes: list[tuple[str, int]]
    path: list[str]


def parse_nodes_url(url: str, default_port: int) -> NodesURL:
    scheme, _, rest = url.partition("://")
    netloc, _, path = rest.partition("/")
    password = None
    if "@" in netloc:
        auth, _, netloc = netloc.rpartition("@")
        password = unquote(auth.partition(":")[2]) or None
    nodes = []
    for node in filter(None, netloc.split(",")):
        host, _, port = node.rpartition(":") if ":" in node else (node, "", "")
        nodes.append((host, int(port) if port else default_port))
    if not nodes:
        raise ValueError(f"{scheme} URL names no node")
    return NodesURL(scheme.startswith("rediss"), password, nodes, [p for p in path.split("/") if p])


def redis_client(url: str, **options: Any) -> Any:
    """A redis.asyncio client (plain, Sentinel-managed master, or Cluster) for `url`.
    `pool_size` and `pool_timeout`: a bounded pool whose callers wait for a connection
    (plain, unix and Sentinel URLs); a Cluster gets `pool_size` connections per node."""
    pool_size = options.pop("pool_size", None)
    pool_timeout = options.pop("pool_timeout", None)
    options |= driver_options()
    if "+sentinel://" in url:
        if pool_size is not None:
            options |= {"max_connections": pool_size, "timeout": pool_timeout}
        return _sentinel_master(url, options, pool_size is not None)
    if "+cluster://" in url:
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        parsed = parse_nodes_url(url, REDIS_PORT)
        options.pop("health_check_interval", None)
        if pool_size is not None:  # redis-py's cluster pools raise at once when full
            options["max_connections"] = pool_size
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
            password=parsed.password,
            ssl=parsed.tls,
            **options,
        )
    if pool_size is None:
        return aioredis.Redis.from_url(url, **options)
    pool = WaitingPool.from_url(url, max_connections=pool_size, timeout=pool_timeout, **options)
    return aioredis.Redis.from_pool(pool)


class WaitingPool(aioredis.BlockingConnectionPool):
    """A bounded pool whose callers wait for a free connection (back-pressure); after
    the wait timeout they get `PoolExhausted`, which never counts as a Redis outage."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, asyncio.TimeoutError | TimeoutError):
                raise PoolExhausted("every pooled Redis connection stayed busy") from exc
            raise


def _sentinel_master(url: str, options: dict[str, Any], waiting: bool) -> Any:
    from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

    class WaitingSentinelPool(SentinelConnectionPool, WaitingPool):
        """The Sentinel-managed master's pool, bounded and blocking like WaitingPool."""

    parsed = parse_nodes_url(url, SENTINEL_PORT)
    if not parsed.path:
        raise ValueError("redis+sentinel URL needs the service name: …/<service>[/<db>]")
    service = parsed.path[0]
    db = int(parsed.path[1]) if len(parsed.path) > 1 else 0
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    timeouts |= driver_options()  # the sentinels' own connections
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        parsed.nodes, sentinel_kwargs=timeouts, ssl=parsed.tls, **timeouts
    )
    pool_class = WaitingSentinelPool if waiting else SentinelConnectionPool
    return sentinel.master_for(
        service, password=parsed.password, db=db, connection_pool_class=pool_class, **options
    )


@functools.cache
def driver_options() -> dict[str, Any]:
    """What redis-py tells Redis of itself (CLIENT SETINFO), worked out once.

    redis-py 8 builds it for every new connection and reads its own package metadata each
    time (`importlib.metadata`: ~0.8 ms of the event loop per connection, so a burst
    that grows a pool by 64 connections held the loop for ~50 ms). Older releases read
    it once, at import, and take no such option."""
    if importlib.util.find_spec("redis.driver_info") is None:
        return {}
    from redis.driver_info import DriverInfo

    return {"driver_info": DriverInfo()}


def limits_uri(url: str) -> str:
    """The same server for the `limits` library (async+redis://, async+redis+sentinel:// …)."""
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url
