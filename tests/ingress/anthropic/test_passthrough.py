"""Native passthrough to `kind: anthropic`: the client's body and betas arrive unchanged
(but for the pipeline's decisions), the reply comes back byte for byte, and usage read
from the stream reaches limits and metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.ingress.anthropic.anthropic_tools import ScriptedAnthropic
from tests.ingress.anthropic.conftest import ANTHROPIC_KEY
from tests.ingress.anthropic.openai_tools import ToolsUpstream
from tests.servers import RunningServer

EPHEMERAL = {"type": "ephemeral"}
BETA = "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"
CLIENT_KEY = "sk-client-never-forwarded-42"
BODY: dict[str, Any] = {
    "model": "claude-native",
    "max_tokens": 300,
    "system": [
        {"type": "text", "text": "You are a coding agent. " * 50, "cache_control": EPHEMERAL},
        {"type": "text", "text": "Repository: gateway"},
    ],
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Fix the bug.", "cache_control": EPHEMERAL}],
        }
    ],
    "tools": [
        {
            "name": "read_file",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
            "cache_control": EPHEMERAL,
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
    ],
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "top_k": 5,
    "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},  # a future field
}
HEADERS = {
    "x-api-key": CLIENT_KEY,
    "anthropic-version": "2023-06-01",
    "anthropic-beta": BETA,
    "content-type": "application/json",
}


def post(gateway: RunningServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/messages", content=orjson.dumps(body), headers=HEADERS, timeout=10
    )


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_body_and_betas_arrive_unchanged_but_for_the_model(
    both_gateway: RunningServer, claude: ScriptedAnthropic, stream: bool
) -> None:
    claude.reset(text="Done.")
    body = {**BODY, "stream": stream}
    response = post(both_gateway, body)
    assert response.status_code == 200, response.text
    assert claude.raw[-1] == orjson.dumps({**body, "model": "claude-upstream"})
    assert claude.raw[-1].count(b'"cache_control":{"type":"ephemeral"}') == 3
    headers = claude.headers[-1]
    assert headers["anthropic-beta"] == BETA
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["x-api-key"] == ANTHROPIC_KEY
    assert "authorization" not in headers
    assert CLIENT_KEY not in repr(headers)
    assert "x-gateway-dropped-params" not in response.headers  # nothing was dropped


def test_stream_is_relayed_byte_for_byte(
    both_gateway: RunningServer, claude: ScriptedAnthropic
) -> None:
    claude.reset(text="Reading the file.", calls=[("read_file", {"path": "a.py"})], piece=2)
    response = post(both_gateway, {**BODY, "stream": True})
    assert response.content == claude.sent[-1]
    reply = post(both_gateway, BODY).json()
    assert reply["content"][1] == {
        "type": "tool_use",
        "id": "toolu_0",
        "name": "read_file",
        "input": {"path": "a.py"},
    }


def test_translation_says_what_it_dropped(
    both_gateway: RunningServer, openai_tools: ToolsUpstream
) -> None:
    openai_tools.reset(text="ok")
    response = post(both_gateway, {**BODY, "model": "gpt-tools"})
    assert response.status_code == 200, response.text
    dropped = response.headers["x-gateway-dropped-params"]
    assert set(dropped.split(", ")) == {"top_k", "thinking", "server tools", "context_management"}
    sent = openai_tools.requests[-1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["read_file"]
    assert "top_k" not in sent and "thinking" not in sent and "cache_control" not in repr(sent)


@pytest.fixture
def capped_gateway(make_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_gateway("caps:\n  models:\n    claude-native: {max_tokens: 50}\n")


def test_pipeline_decisions_apply_to_the_raw_body(
    capped_gateway: RunningServer, claude: ScriptedAnthropic
) -> None:
    claude.reset(text="short")
    response = post(capped_gateway, {**BODY, "stream": True})
    assert response.status_code == 200
    assert claude.requests[-1]["max_tokens"] == 50  # clamped by caps
    assert claude.requests[-1]["model"] == "claude-upstream"  # resolved by routing
    metrics = httpx.get(f"{capped_gateway.url}/metrics").text
    # usage read from message_start / message_delta: 10 input + 30 cache reads, 7 output
    assert 'gateway_tokens_total{direction="input",model="claude-native"} 40.0' in metrics
    assert 'gateway_tokens_total{direction="output",model="claude-native"} 7.0' in metrics


def test_cache_hits_render_as_messages_and_native_replies_are_never_stored(
    make_gateway: Callable[[str], RunningServer],
    openai_tools: ToolsUpstream,
    claude: ScriptedAnthropic,
) -> None:
    gateway = make_gateway("cache: {enabled: true}\n")
    openai_tools.reset(text="cached answer")
    body = {"model": "gpt-tools", "max_tokens": 20, "messages": BODY["messages"]}
    first = post(gateway, body)
    assert first.headers["x-gateway-cache"] == "miss"
    for stream in (False, True):  # a stored canonical reply, replayed in Messages format
        again = post(gateway, {**body, "stream": stream})
        assert again.headers["x-gateway-cache"] == "hit"
        if stream:
            assert '"text":"cached answer"' in again.text
            assert again.text.rstrip().endswith('{"type":"message_stop"}')
        else:
            assert again.json()["content"][0]["text"] == "cached answer"
    assert len(openai_tools.requests) == 1
    claude.reset(text="native")
    native = {**body, "model": "claude-native"}
    for _ in range(2):
        assert post(gateway, native).json()["content"][0]["text"] == "native"
    assert len(claude.raw) == 2  # an Anthropic-format reply is not a canonical cache entry
