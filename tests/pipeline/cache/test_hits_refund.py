"""`cache.hits_count_requests: false`: a cache hit gives its request-limit charge back,
through the limiter both `gateway serve` processes share in Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import upstream_config
from tests.gateway_process import gateway_process
from tests.servers import RunningServer
from tests.upstream import FakeUpstream


def ask(url: str, text: str) -> httpx.Response:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)


@pytest.mark.parametrize(
    ("hits_count_requests", "expected"),
    [
        # miss (1 of 2), four hits given back, a new question (2 of 2), a third: refused
        (False, [200, 200, 200, 200, 200, 200, 429]),
        # the default: every hit counts, the second hit is already over the limit
        (True, [200, 200, 429, 429, 429, 429, 429]),
    ],
)
def test_cache_hits_give_back_their_request_charge_across_instances(
    tmp_path: Path,
    redis_url: str,
    upstream_server: object,
    upstream: FakeUpstream,
    hits_count_requests: bool,
    expected: list[int],
) -> None:
    _, server = upstream_server  # type: ignore[misc]
    prefix = f"test-{uuid.uuid4().hex}:"
    extra = f"""state: {{backend: redis, redis_url: "{redis_url}", key_prefix: "{prefix}"}}
cache: {{enabled: true, hits_count_requests: {str(hits_count_requests).lower()}}}
limits: {{models: {{gpt-test: {{requests: ['2/day']}}}}}}
"""
    config = tmp_path / "gateway.yaml"
    config.write_text(upstream_config(server.url, extra))
    question = f"What is the answer? {prefix}"
    with gateway_process(config) as first, gateway_process(config) as second:
        replies = [
            ask(first.url, question),
            ask(second.url, question),
            ask(first.url, question),
            ask(second.url, question),
            ask(first.url, question),
            ask(second.url, f"Another question {prefix}"),
            ask(first.url, f"A third question {prefix}"),
        ]
    assert [r.status_code for r in replies] == expected
    if not hits_count_requests:
        assert [r.headers["x-gateway-cache"] for r in replies[1:5]] == ["hit"] * 4
        # one request of two taken (the miss): the hit's own charge is back
        assert replies[1].headers["x-ratelimit-remaining-requests"] == "1"
        assert len(upstream.requests) == 2  # the two misses; the third was refused first


def test_cache_hits_give_back_their_request_charge_in_one_process(
    start_gateway: Callable[[str], RunningServer], upstream_server: object, upstream: FakeUpstream
) -> None:
    _, server = upstream_server  # type: ignore[misc]
    extra = """cache: {enabled: true, hits_count_requests: false}
limits: {models: {gpt-test: {requests: ['2/day']}}}
"""
    gateway = start_gateway(upstream_config(server.url, extra))
    statuses = [ask(gateway.url, "Same question?").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 200]  # one miss, three hits given back (memory limiter)
    assert ask(gateway.url, "Another question?").status_code == 200  # 2 of 2
    assert ask(gateway.url, "A third question?").status_code == 429
    assert len(upstream.requests) == 2
