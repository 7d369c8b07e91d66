"""The cache under faults (when this checkout has it): a stream the client left, or one
that broke, is never stored; a later identical request gets the whole answer."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from gateway.config.schema import GatewayConfig
from tests.hardening.clients import leave_after_events, post_bytes
from tests.hardening.harness import CHAT, running_gateway, single_attempt

pytestmark = pytest.mark.skipif(
    "cache" not in GatewayConfig.model_fields, reason="no cache in this checkout yet"
)
TEXT = "one two three four five six seven eight nine ten"
CONFIG = f"""
cache: {{enabled: true}}
providers:
  slow: {{kind: mock, mock: {{mode: fixed, text: {TEXT}, chunks: 10, chunk_delay_ms: 30}}}}
  broken: {{kind: mock, mock: {{mode: fixed, text: {TEXT}, chunks: 10, fail_after_chunks: 3}}}}
models:
  slow: {{deployments: [{{provider: slow, model: s}}]{single_attempt()}}}
  broken: {{deployments: [{{provider: broken, model: b}}]{single_attempt()}}}
"""


def stream_text(response: httpx.Response) -> str:
    parts = []
    for line in response.text.splitlines():
        if line.startswith("data: {"):
            chunk = orjson.loads(line[6:])
            for choice in chunk.get("choices") or []:
                parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts)


def test_a_stream_the_client_left_is_not_served_from_the_cache() -> None:
    body = {"model": "slow", "messages": [{"role": "user", "content": "q1"}], "stream": True}
    with running_gateway(CONFIG) as gw:
        asyncio.run(leave_after_events(gw.server.port, post_bytes(CHAT, body), 2, abort=False))
        again = httpx.post(gw.url + CHAT, json=body, timeout=10)
        assert again.headers.get("x-gateway-cache", "miss").startswith("miss")
        assert stream_text(again) == TEXT
        third = httpx.post(gw.url + CHAT, json=body, timeout=10)
        assert third.headers["x-gateway-cache"].startswith("hit")  # the full one was stored
        assert stream_text(third) == TEXT


def test_a_broken_stream_is_never_stored() -> None:
    body = {"model": "broken", "messages": [{"role": "user", "content": "q2"}], "stream": True}
    with running_gateway(CONFIG) as gw:
        for _ in range(2):
            response = httpx.post(gw.url + CHAT, json=body, timeout=10)
            assert not response.headers.get("x-gateway-cache", "").startswith("hit")
            assert '"error"' in response.text and response.text.rstrip().endswith("[DONE]")
