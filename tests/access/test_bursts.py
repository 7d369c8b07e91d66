"""Bursts: two `gateway serve` processes share one Redis through small, blocking pools.

More concurrent requests than pooled connections wait for a connection (back-pressure)
instead of failing over to per-process limits: exactly the limit passes across both
processes, nothing answers 503, and the spend written equals the cost of the replies.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis

from gateway.auth.keys import hash_key
from gateway.config.schema import StateConfig
from tests.gateway_process import GatewayProcess, gateway_process
from tests.redis_keys import drop_prefix

KEY = "sk-test-burst-0123456789"
LIMIT = 50
CONCURRENT = 220
PROMPT, COMPLETION = 7, 9
USD_PER_MTOK_IN, USD_PER_MTOK_OUT = 1000.0, 2000.0  # a reply costs $0.025
REPLY_USD = (PROMPT * USD_PER_MTOK_IN + COMPLETION * USD_PER_MTOK_OUT) / 1e6


def pool_settings() -> str:
    """A pool far smaller than the burst (when this checkout can size one)."""
    if "redis_pool_size" not in StateConfig.model_fields:
        return ""
    return ", redis_pool_size: 4, redis_pool_timeout_seconds: 30"


def burst_config(redis_url: str, prefix: str) -> str:
    return f"""
logging: {{level: info, access_log: false}}
state: {{backend: redis, redis_url: "{redis_url}", key_prefix: "{prefix}"{pool_settings()}}}
providers:
  mock:
    kind: mock
    mock: {{prompt_tokens: {PROMPT}, completion_tokens: {COMPLETION}, chunks: 2}}
models:
  m: {{deployments: [{{provider: mock, model: m}}]}}
pricing:
  m: {{input_per_mtok: {USD_PER_MTOK_IN}, output_per_mtok: {USD_PER_MTOK_OUT}}}
auth:
  keys:
    - id: burst
      hash: "{hash_key(KEY)}"
      limits: {{requests: ['{LIMIT}/minute'], tokens: ['1000000/minute']}}
      budget: {{usd_per_day: 1000}}
limits: {{failed_auth_ip: []}}
"""


@pytest.fixture
def two(tmp_path: Path, redis_url: str) -> Iterator[tuple[list[GatewayProcess], str]]:
    redis.Redis.from_url(redis_url).ping()  # fail, not skip, without Redis
    prefix = f"test-burst-{uuid.uuid4().hex[:10]}:"
    path = tmp_path / "gateway.yaml"
    path.write_text(burst_config(redis_url, prefix))
    try:
        with ExitStack() as stack:
            yield [stack.enter_context(gateway_process(path)) for _ in range(2)], prefix
    finally:
        drop_prefix(redis_url, prefix)


async def burst(urls: list[str], total: int) -> list[int]:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9}
    headers = {"authorization": f"Bearer {KEY}"}

    async def one(client: httpx.AsyncClient, i: int) -> int:
        stream = i % 2 == 0
        usage = {"stream": True, "stream_options": {"include_usage": True}}
        payload = {**body, **usage} if stream else body
        url = f"{urls[i % len(urls)]}/v1/chat/completions"
        async with client.stream("POST", url, json=payload, headers=headers) as reply:
            await reply.aread()
            return reply.status_code

    limits = httpx.Limits(max_connections=total)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return list(await asyncio.gather(*(one(client, i) for i in range(total))))


def recorded_spend(redis_url: str, prefix: str) -> dict[str, float]:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    raw = redis.Redis.from_url(redis_url).hgetall(f"{prefix}spend:key:burst:day:{day}")
    return {k.decode(): float(v) for k, v in raw.items()}


def test_burst_over_two_processes_is_exact_and_every_debit_is_written(
    two: tuple[list[GatewayProcess], str], redis_url: str
) -> None:
    gateways, prefix = two
    statuses = asyncio.run(burst([g.url for g in gateways], CONCURRENT))
    counts = {status: statuses.count(status) for status in set(statuses)}
    assert counts == {200: LIMIT, 429: CONCURRENT - LIMIT}, counts
    spend: dict[str, float] = {}
    for _ in range(50):  # debits are written when each reply completes, then retried
        spend = recorded_spend(redis_url, prefix)
        if spend.get("requests") == LIMIT:
            break
        time.sleep(0.1)
    assert spend.get("requests") == LIMIT, spend
    assert spend["usd"] == pytest.approx(LIMIT * REPLY_USD)
    assert spend["tokens"] == LIMIT * (PROMPT + COMPLETION)


LEASED_LIMIT = 300  # with lease_fraction 0.05: leases of 15 requests


@pytest.fixture
def two_leasing(tmp_path: Path, redis_url: str) -> Iterator[tuple[list[GatewayProcess], str]]:
    redis.Redis.from_url(redis_url).ping()
    prefix = f"test-lease-burst-{uuid.uuid4().hex[:10]}:"
    config = burst_config(redis_url, prefix).replace(
        f"['{LIMIT}/minute']", f"['{LEASED_LIMIT}/minute']"
    )
    config = config.replace(
        f'key_prefix: "{prefix}"',
        f'key_prefix: "{prefix}", lease_fraction: 0.05, lease_seconds: 0.5',
    )
    path = tmp_path / "gateway.yaml"
    path.write_text(config)
    try:
        with ExitStack() as stack:
            yield [stack.enter_context(gateway_process(path)) for _ in range(2)], prefix
    finally:
        drop_prefix(redis_url, prefix)


def test_leased_limits_and_budgets_over_two_processes_never_pass_and_hold_nothing_after(
    two_leasing: tuple[list[GatewayProcess], str], redis_url: str
) -> None:
    """Leases (gateway/state/leases.py) on the request limit, the token limit and the
    budget: never more than the limit passes; once the leases end, the rest of the limit
    is usable, every reply's spend is written and nothing stays reserved."""
    gateways, prefix = two_leasing
    urls = [g.url for g in gateways]
    first = asyncio.run(burst(urls, 360))
    passed = first.count(200)
    errors = [line for g in gateways for line in g.logs().splitlines() if '"error"' in line]
    assert set(first) <= {200, 429} and passed <= LEASED_LIMIT, errors[-5:]
    time.sleep(1.2)  # every lease has ended and given back what it held
    second = asyncio.run(burst(urls, LEASED_LIMIT - passed + 20))
    assert passed + second.count(200) == LEASED_LIMIT  # exactly the limit, across both
    spend: dict[str, float] = {}
    for _ in range(50):
        spend = recorded_spend(redis_url, prefix)
        if spend.get("requests") == LEASED_LIMIT and not spend.get("reserved_usd"):
            break
        time.sleep(0.1)
    assert spend.get("requests") == LEASED_LIMIT, spend
    assert spend["usd"] == pytest.approx(LEASED_LIMIT * REPLY_USD)
    assert spend.get("reserved_usd", 0.0) == pytest.approx(0.0, abs=1e-9), spend
    assert spend.get("reserved_tokens", 0.0) == pytest.approx(0.0, abs=1e-6), spend
