"""The exact cache shared through Redis by two real `gateway serve` processes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import redis

from tests.conftest import upstream_config
from tests.gateway_process import gateway_process
from tests.upstream import FakeUpstream


def wait_for_keys(redis_url: str, prefix: str, seconds: float = 10.0) -> None:
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + seconds
    try:
        while not list(client.scan_iter(prefix + "*", count=1000)):
            assert time.monotonic() < deadline, "the first reply was never stored"
            time.sleep(0.02)
    finally:
        client.close()


def test_redis_cache_is_shared_between_two_gateway_processes(
    tmp_path: Path, redis_url: str, upstream_server, upstream: FakeUpstream
) -> None:
    _, server = upstream_server
    prefix = f"test-{uuid.uuid4().hex}:"
    extra = f"""state: {{backend: redis, redis_url: "{redis_url}", key_prefix: "{prefix}"}}
cache: {{enabled: true}}
"""
    config = tmp_path / "gateway.yaml"
    config.write_text(upstream_config(server.url, extra))
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": prefix}]}
    with gateway_process(config) as first, gateway_process(config) as second:
        stored = httpx.post(f"{first.url}/v1/chat/completions", json=body, timeout=10)
        assert stored.headers["x-gateway-cache"] == "miss"
        wait_for_keys(redis_url, prefix)  # the store runs when the reply completes
        body_stream = {**body, "stream": True}
        served = httpx.post(f"{second.url}/v1/chat/completions", json=body, timeout=10)
        streamed = httpx.post(f"{second.url}/v1/chat/completions", json=body_stream, timeout=10)
    assert served.headers["x-gateway-cache"] == "hit"
    assert served.json()["choices"] == stored.json()["choices"]
    assert streamed.headers["x-gateway-cache"] == "hit"
    assert streamed.text.rstrip().endswith("data: [DONE]")
    assert len(upstream.requests) == 1
