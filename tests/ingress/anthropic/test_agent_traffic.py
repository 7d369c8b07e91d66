"""Recorded-shape agent traffic (as a coding agent sends it): long system prompt in blocks
with cache_control, 24 tool definitions, an earlier turn of parallel tool calls and their
results (one an error), an image, streaming; answered with parallel tool calls. Both paths."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import orjson
import pytest

from tests.ingress.anthropic.anthropic_tools import ScriptedAnthropic
from tests.ingress.anthropic.openai_tools import ToolsUpstream

PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452")).decode()
EPHEMERAL = {"type": "ephemeral"}


def _tool(i: int) -> dict[str, Any]:
    return {
        "name": f"tool_{i:02d}",
        "description": f"Tool number {i}: does one thing well. " * 4,
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "absolute path"},
                "limit": {"type": "integer", "minimum": 1},
                "flags": {"type": "array", "items": {"type": "string"}},
                "mode": {"enum": ["read", "write"]},
            },
            "required": ["path"],
        },
    }


TOOLS = [_tool(i) for i in range(24)]
TOOLS[-1]["cache_control"] = EPHEMERAL
SYSTEM = [
    {"type": "text", "text": "You are an interactive CLI coding agent. " * 400},
    {"type": "text", "text": "Environment: linux, cwd /repo. " * 20, "cache_control": EPHEMERAL},
]
HISTORY = [
    {"role": "user", "content": [{"type": "text", "text": "Look at a.py and b.py"}]},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Reading both."},
            {"type": "tool_use", "id": "toolu_a", "name": "tool_00", "input": {"path": "/a.py"}},
            {"type": "tool_use", "id": "toolu_b", "name": "tool_00", "input": {"path": "/b.py"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "print('a')"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_b",
                "content": [{"type": "text", "text": "No such file"}],
                "is_error": True,
            },
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "text", "text": "Here is a screenshot too.", "cache_control": EPHEMERAL},
        ],
    },
]
CALLS = [("tool_03", {"path": "/c.py", "limit": 20}), ("tool_07", {"path": "/d.py"})]


@pytest.mark.parametrize("model", ["gpt-tools", "claude-native"])
def test_agent_turn_streams_parallel_calls_on_both_paths(
    client: anthropic.Anthropic,
    openai_tools: ToolsUpstream,
    claude: ScriptedAnthropic,
    model: str,
) -> None:
    upstream: Any = claude if model == "claude-native" else openai_tools
    upstream.reset(text="Two more files.", calls=CALLS, piece=5)
    request: dict[str, Any] = {
        "model": model,
        "max_tokens": 4096,
        "system": SYSTEM,
        "tools": TOOLS,
        "messages": HISTORY,
        "metadata": {"user_id": "user-7"},
    }
    with client.messages.stream(**request) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert [(b.name, b.input) for b in final.content[1:]] == CALLS  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    if model == "claude-native":
        sent = orjson.loads(claude.raw[-1])
        assert sent == {**request, "model": "claude-upstream", "stream": True}
        return
    sent = openai_tools.requests[-1]
    assert sent["user"] == "user-7"
    assert len(sent["tools"]) == 24
    assert sent["tools"][3]["function"]["parameters"] == TOOLS[3]["input_schema"]
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]
    system = sent["messages"][0]["content"]
    assert [p["text"] for p in system] == [b["text"] for b in SYSTEM]
    assistant = sent["messages"][2]
    assert [c["id"] for c in assistant["tool_calls"]] == ["toolu_a", "toolu_b"]
    assert sent["messages"][4]["content"] == "[tool error] No such file"
    image, text = sent["messages"][5]["content"]
    assert image == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert text == {"type": "text", "text": "Here is a screenshot too."}
