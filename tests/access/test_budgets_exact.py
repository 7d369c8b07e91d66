"""Exact budgets: concurrent requests at two `gateway serve` processes sharing Redis never
spend past a budget, beyond the documented prompt-estimate slack (gateway/accounting/budgets.py).

Each request reserves its maximum cost (prompt estimate + max_tokens x n at the model's
price) before the call; the mock provider reports exactly that maximum, or more prompt
tokens than estimated (the slack the bound allows).
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

from gateway.accounting.tokens import count_prompt_tokens
from gateway.auth.keys import hash_key
from tests.gateway_process import GatewayProcess, gateway_process
from tests.redis_keys import drop_prefix

KEY = "sk-test-budget-exact-0123456789"
MESSAGES = [{"role": "user", "content": "what does a budget guarantee"}]
ESTIMATE = count_prompt_tokens({"messages": MESSAGES}, "chat")
MAX_TOKENS, CHOICES = 5, 2
IN_USD, OUT_USD = 1000e-6, 2000e-6  # per token
BUDGET = 1.0
CONCURRENT = 40


def request_max_usd() -> float:
    return ESTIMATE * IN_USD + MAX_TOKENS * CHOICES * OUT_USD


def budget_config(redis_url: str, prefix: str, scope: str, extra_prompt: int) -> str:
    key_budget = f"budget: {{usd_per_day: {BUDGET}}}" if scope == "key" else "team: t"
    return f"""
logging: {{level: info, access_log: false}}
state: {{backend: redis, redis_url: "{redis_url}", key_prefix: "{prefix}"}}
providers:
  mock:
    kind: mock
    mock:
      prompt_tokens: {ESTIMATE + extra_prompt}
      completion_tokens: {MAX_TOKENS * CHOICES}
      chunks: 4
      chunk_delay_ms: 30
models:
  m: {{deployments: [{{provider: mock, model: m}}]}}
pricing:
  m: {{input_per_mtok: {IN_USD * 1e6}, output_per_mtok: {OUT_USD * 1e6}}}
auth:
  keys:
    - {{id: spender, hash: "{hash_key(KEY)}", {key_budget}}}
  teams:
    t: {{budget: {{usd_per_month: {BUDGET}}}}}
limits: {{failed_auth_ip: []}}
"""


@pytest.fixture
def gateways(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str
) -> Iterator[tuple[list[GatewayProcess], str]]:
    scope, extra_prompt = request.param
    redis.Redis.from_url(redis_url).ping()  # fail, not skip, without Redis
    prefix = f"test-budget-{uuid.uuid4().hex[:10]}:"
    path = tmp_path / "gateway.yaml"
    path.write_text(budget_config(redis_url, prefix, scope, extra_prompt))
    try:
        with ExitStack() as stack:
            yield [stack.enter_context(gateway_process(path)) for _ in range(2)], prefix
    finally:
        drop_prefix(redis_url, prefix)


async def spend_at_once(urls: list[str]) -> list[httpx.Response]:
    body = {"model": "m", "messages": MESSAGES, "max_tokens": MAX_TOKENS, "n": CHOICES}
    body |= {"stream": True, "stream_options": {"include_usage": True}}
    headers = {"authorization": f"Bearer {KEY}"}

    async def one(client: httpx.AsyncClient, i: int) -> httpx.Response:
        url = f"{urls[i % len(urls)]}/v1/chat/completions"
        async with client.stream("POST", url, json=body, headers=headers) as reply:
            await reply.aread()
            return reply

    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(one(client, i) for i in range(CONCURRENT))))


def spent(redis_url: str, prefix: str, scope: str) -> dict[str, float]:
    now = datetime.now(UTC)
    period = f"day:{now:%Y-%m-%d}" if scope == "key" else f"month:{now:%Y-%m}"
    name = "key:spender" if scope == "key" else "team:t"
    raw = redis.Redis.from_url(redis_url).hgetall(f"{prefix}spend:{name}:{period}")
    return {k.decode(): float(v) for k, v in raw.items()}


@pytest.mark.parametrize(
    ("gateways", "extra_prompt"),
    [(("key", 0), 0), (("team", 0), 0), (("key", 6), 6)],
    ids=["key-budget", "team-budget", "key-budget-prompt-underestimated"],
    indirect=["gateways"],
)
def test_concurrent_requests_never_spend_past_the_budget(
    gateways: tuple[list[GatewayProcess], str], extra_prompt: int, redis_url: str
) -> None:
    processes, prefix = gateways
    replies = asyncio.run(spend_at_once([g.url for g in processes]))
    statuses = [r.status_code for r in replies]
    served = statuses.count(200)
    refused = [r for r in replies if r.status_code == 429]
    assert served + len(refused) == CONCURRENT, statuses
    assert all(b"insufficient_quota" in r.content for r in refused)
    real_usd = request_max_usd() + extra_prompt * IN_USD
    usage: dict[str, dict[str, float]] = {}
    for _ in range(50):  # settlement runs as each reply completes
        usage = {scope: spent(redis_url, prefix, scope) for scope in ("key", "team")}
        if max(u.get("requests", 0) for u in usage.values()) == served:
            break
        time.sleep(0.1)
    recorded = max(usage["key"].get("usd", 0.0), usage["team"].get("usd", 0.0))
    assert recorded == pytest.approx(served * real_usd)
    slack = CONCURRENT * extra_prompt * IN_USD  # the documented bound: prompt underestimates
    assert recorded <= BUDGET + slack + 1e-9, (recorded, served)
    if not extra_prompt:  # as many served as reservations fit: the budget is not under-used
        assert served == int(BUDGET / request_max_usd()), served
    for counters in usage.values():  # every reservation was settled
        assert counters.get("reserved_usd", 0.0) == pytest.approx(0.0, abs=1e-9)
