"""Every stage runs on the canonical request: caps bound max_output_tokens, the input cap
counts the chain's history, the cache keys the canonical request, metrics and logs say
`responses`."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest

from tests.servers import RunningServer
from tests.tool_upstream import ToolUpstream

EXTRA = """
caps:
  models: {gpt-test: {max_tokens: 16, max_input_tokens: 40}}
cache: {enabled: true}
"""


@pytest.fixture
def gateway(make_responses_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_responses_gateway(EXTRA)


def client(gateway: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)


def test_caps_bound_max_output_tokens(gateway: RunningServer, tool_upstream: ToolUpstream) -> None:
    client(gateway).responses.create(model="gpt-test", input="bound me", max_output_tokens=999)
    assert tool_upstream.requests[-1]["max_tokens"] == 16


def test_the_input_cap_counts_the_history(gateway: RunningServer) -> None:
    api = client(gateway)
    words = "alpha beta gamma delta epsilon zeta eta theta"
    previous = None
    with pytest.raises(openai.BadRequestError) as refused:
        for _ in range(6):  # each turn alone fits; the growing chain does not
            previous = api.responses.create(
                model="gpt-test", input=words, previous_response_id=previous
            ).id
    assert previous is not None  # the first turns were served
    assert refused.value.status_code == 400


def test_cache_keys_the_canonical_request(
    gateway: RunningServer, tool_upstream: ToolUpstream
) -> None:
    body = {"model": "gpt-test", "input": "cache me", "temperature": 0}
    first = httpx.post(f"{gateway.url}/v1/responses", json=body)
    again = httpx.post(f"{gateway.url}/v1/responses", json=body)
    chat = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={
            "model": "gpt-test",
            "messages": [{"role": "user", "content": "cache me"}],
            "temperature": 0,
        },
    )
    streamed = list(client(gateway).responses.create(**body, stream=True))
    assert len(tool_upstream.requests) == 1
    assert [r.headers["x-gateway-cache"] for r in (first, again, chat)] == ["miss", "hit", "hit"]
    assert (
        again.json()["output"][0]["content"][0]["text"]
        == first.json()["output"][0]["content"][0]["text"]
    )
    assert streamed[-1].response.output_text == "You said: cache me (messages: 1)"
    assert streamed[-1].response.usage is not None  # a replayed stream still reports usage
    assert again.json()["id"] != first.json()["id"]


def test_metrics_label_the_endpoint_responses(gateway: RunningServer) -> None:
    client(gateway).responses.create(model="gpt-test", input="count me")
    text = httpx.get(f"{gateway.url}/metrics").text
    assert (
        'gateway_requests_total{endpoint="responses",model="gpt-test",status_class="2xx"}' in text
    )
