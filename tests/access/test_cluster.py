"""Exact limits across instances: three `gateway serve` processes share one Redis.

Concurrent requests for one key at all three: exactly N pass a limit of N per minute,
for requests and for streamed tokens. Redis killed under load: no 5xx, per-process
fallback limits in effect and /ready degraded; Redis back: shared limits return.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from gateway.accounting.tokens import count_prompt_tokens
from gateway.auth.keys import hash_key
from tests.gateway_process import GatewayProcess, free_port, gateway_process

KEY = "sk-test-cluster-0123456789"
TOKEN_KEY = "sk-test-cluster-tokens-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}
MESSAGES = [{"role": "user", "content": "count the tokens of this prompt please"}]
MAX_TOKENS = 20
PER_REQUEST = count_prompt_tokens({"messages": MESSAGES}, "chat") + MAX_TOKENS


def cluster_config(redis_url: str, prefix: str, limits: str, token_limits: str = "{}") -> str:
    # The mock reports exactly the reserved estimate, so settlement leaves counts as they are.
    prompt = PER_REQUEST - MAX_TOKENS
    return f"""
logging: {{level: info, access_log: false}}
state: {{backend: redis, redis_url: "{redis_url}", key_prefix: "{prefix}"}}
providers:
  mock:
    kind: mock
    mock:
      prompt_tokens: {prompt}
      completion_tokens: {MAX_TOKENS}
      chunks: 3
      chunk_delay_ms: 20
models:
  m:
    deployments: [{{provider: mock, model: m}}]
auth:
  keys:
    - {{id: shared, hash: "{hash_key(KEY)}", limits: {limits}}}
    - {{id: tokens, hash: "{hash_key(TOKEN_KEY)}", limits: {token_limits}}}
limits: {{failed_auth_ip: []}}
"""


@pytest.fixture(scope="module")
def three(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[list[GatewayProcess]]:
    redis.Redis.from_url(redis_url).ping()  # fail, not skip, without Redis
    prefix = f"test-{uuid.uuid4().hex[:10]}:"
    tokens = f"{{tokens: ['{12 * PER_REQUEST}/minute']}}"
    config = cluster_config(redis_url, prefix, "{requests: ['25/minute']}", tokens)
    path = tmp_path_factory.mktemp("cluster") / "gateway.yaml"
    path.write_text(config)
    with ExitStack() as stack:
        yield [stack.enter_context(gateway_process(path)) for _ in range(3)]


async def fire(urls: list[str], total: int, stream: bool, auth: dict[str, str] = AUTH) -> list[int]:
    body = {"model": "m", "messages": MESSAGES, "max_tokens": MAX_TOKENS}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}

    async def one(client: httpx.AsyncClient, url: str) -> int:
        path = f"{url}/v1/chat/completions"
        async with client.stream("POST", path, json=body, headers=auth) as r:
            await r.aread()
            return r.status_code

    limits = httpx.Limits(max_connections=total)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        calls = (one(client, urls[i % len(urls)]) for i in range(total))
        return list(await asyncio.gather(*calls))


def test_request_limit_exact_across_three_processes(three: list[GatewayProcess]) -> None:
    statuses = asyncio.run(fire([g.url for g in three], 90, stream=False))
    assert statuses.count(200) == 25
    assert statuses.count(429) == 65


def test_streamed_token_limit_exact_across_three_processes(three: list[GatewayProcess]) -> None:
    auth = {"authorization": f"Bearer {TOKEN_KEY}"}
    statuses = asyncio.run(fire([g.url for g in three], 45, stream=True, auth=auth))
    assert statuses.count(200) == 12
    assert statuses.count(429) == 33


@contextmanager
def own_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    server = shutil.which("redis-server")
    assert server, "redis-server is needed for this test"
    argv = [server, "--port", str(port), "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 5
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "own redis-server did not start"
            time.sleep(0.05)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(5)


def test_redis_killed_under_load_falls_back_and_recovers(tmp_path: Path, prefix: str) -> None:
    port = free_port()
    config = cluster_config(f"redis://127.0.0.1:{port}/0", prefix, "{requests: ['10/minute']}")
    path = tmp_path / "gateway.yaml"
    path.write_text(config)
    with ExitStack() as stack:
        first_redis = stack.enter_context(own_redis(port))
        gateways = [stack.enter_context(gateway_process(path)) for _ in range(2)]
        urls = [g.url for g in gateways]
        shared = asyncio.run(fire(urls, 20, stream=False))
        assert shared.count(200) == 10, sorted(shared)

        first_redis.terminate()
        first_redis.wait(5)
        during = asyncio.run(fire(urls, 40, stream=True))
        assert all(s < 500 for s in during), during
        # Each process now limits on its own, from an empty per-process window.
        assert during.count(200) == 20, during
        for url in urls:
            ready = httpx.get(f"{url}/ready").json()
            assert ready["status"] == "degraded"
            assert "fallback" in ready["checks"]["ratelimit"]
            assert "gateway_ratelimit_fallback 1.0" in httpx.get(f"{url}/metrics").text

        with own_redis(port):
            for url in urls:
                assert wait_ready(url), httpx.get(f"{url}/ready").text
            after = asyncio.run(fire(urls, 30, stream=False))
            assert after.count(200) == 10, sorted(after)  # a fresh Redis: one shared window again
            assert "gateway_ratelimit_fallback 0.0" in httpx.get(f"{urls[0]}/metrics").text


def wait_ready(url: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/ready").json()["status"] == "ready":
            return True
        time.sleep(0.1)
    return False
