"""The anthropic SDK against the gateway, on both paths: translated to an OpenAI-compatible
upstream (`gpt-tools`) and passed through to an Anthropic upstream (`claude-native`)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.ingress.anthropic.anthropic_tools import ScriptedAnthropic
from tests.ingress.anthropic.openai_tools import ToolsUpstream
from tests.servers import RunningServer

PATHS = ["gpt-tools", "claude-native"]
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
    {
        "name": "get_time",
        "description": "Local time",
        "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
]
CALLS = [("get_weather", {"city": "Paris", "unit": "c"}), ("get_time", {"tz": "Europe/Paris"})]


@pytest.fixture
def scripted(
    request: pytest.FixtureRequest, openai_tools: ToolsUpstream, claude: ScriptedAnthropic
) -> Any:
    """The upstream behind the model under test (both take the same Script)."""
    return claude if request.node.callspec.params["model"] == "claude-native" else openai_tools


@pytest.mark.parametrize("model", PATHS)
def test_create_returns_text_stop_reason_and_usage_with_cache_reads(
    client: anthropic.Anthropic, scripted: Any, model: str
) -> None:
    scripted.reset(text="Sunny and mild.")
    message = client.messages.create(model=model, max_tokens=64, messages=USER)
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Sunny and mild."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (10, 7, 30)


@pytest.mark.parametrize("model", PATHS)
def test_stream_final_message_matches_create(
    client: anthropic.Anthropic, scripted: Any, model: str
) -> None:
    scripted.reset(text="Sunny and mild, 21 degrees.")
    with client.messages.stream(model=model, max_tokens=64, messages=USER) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "Sunny and mild, 21 degrees."
    assert final.content[0].text == "Sunny and mild, 21 degrees."  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert (final.usage.output_tokens, final.usage.cache_read_input_tokens) == (7, 30)


def _tool_round_trip(client: anthropic.Anthropic, model: str, *, stream: bool) -> Any:
    kwargs: dict[str, Any] = {"model": model, "max_tokens": 200, "tools": TOOLS}
    if stream:
        with client.messages.stream(messages=USER, **kwargs) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(messages=USER, **kwargs)
    uses = [b for b in first.content if b.type == "tool_use"]
    results = [
        {"type": "tool_result", "tool_use_id": uses[0].id, "content": "21C, sunny"},
        {
            "type": "tool_result",
            "tool_use_id": uses[1].id,
            "content": "clock broke",
            "is_error": True,
        },
    ]
    history = [
        *USER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": results},
    ]
    return first, history


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("model", PATHS)
def test_parallel_tool_calls_and_results_round_trip(
    client: anthropic.Anthropic, scripted: Any, model: str, stream: bool
) -> None:
    scripted.reset(text="Let me check.", calls=CALLS, piece=2)
    first, history = _tool_round_trip(client, model, stream=stream)
    assert [b.type for b in first.content] == ["text", "tool_use", "tool_use"]
    assert [(b.name, b.input) for b in first.content[1:]] == CALLS  # type: ignore[union-attr]
    assert first.stop_reason == "tool_use"
    scripted.script.calls = []
    scripted.script.text = "It is 21C."
    answer = client.messages.create(model=model, max_tokens=50, tools=TOOLS, messages=history)
    assert answer.content[0].text == "It is 21C."  # type: ignore[union-attr]
    sent = scripted.requests[-1]["messages"]
    if model == "gpt-tools":  # the results became tool messages, one per call, in order
        tools = [m for m in sent if m["role"] == "tool"]
        assert [m["tool_call_id"] for m in tools] == ["call_0", "call_1"]
        assert tools[1]["content"] == "[tool error] clock broke"
        calls = sent[1]["tool_calls"]
        assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [a for _, a in CALLS]
    else:  # passed through as the client wrote them
        assert sent[-1]["content"] == history[-1]["content"]


@pytest.mark.parametrize("model", PATHS)
def test_input_json_deltas_reassemble_to_the_arguments(
    both_gateway: RunningServer, scripted: Any, model: str
) -> None:
    scripted.reset(calls=CALLS, piece=1)
    body = {"model": model, "max_tokens": 99, "messages": USER, "tools": TOOLS, "stream": True}
    events = _events(both_gateway, body)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "ping" in names
    parts: dict[int, str] = {}
    for name, data in events:
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta":
            parts[data["index"]] = parts.get(data["index"], "") + data["delta"]["partial_json"]
    assert [orjson.loads(p) for _, p in sorted(parts.items())] == [a for _, a in CALLS]
    starts = [d["index"] for n, d in events if n == "content_block_start"]
    stops = [d["index"] for n, d in events if n == "content_block_stop"]
    assert starts == stops == [0, 1]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def _events(gateway: RunningServer, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    response = httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=10)
    assert response.status_code == 200, response.text
    events = []
    for block in response.text.split("\n\n"):
        if block.strip():
            name_line, data_line = block.split("\n", 1)
            events.append((name_line.removeprefix("event: "), orjson.loads(data_line[6:])))
    return events


@pytest.mark.parametrize("model", PATHS)
def test_stop_sequence_is_reported(client: anthropic.Anthropic, scripted: Any, model: str) -> None:
    scripted.reset(text="one two", stop_sequence="END")
    message = client.messages.create(
        model=model, max_tokens=20, messages=USER, stop_sequences=["END"]
    )
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
    if model == "gpt-tools":
        assert scripted.requests[-1]["stop"] == ["END"]


def test_count_tokens_counts_system_messages_and_tools(client: anthropic.Anthropic) -> None:
    small = client.messages.count_tokens(model="gpt-tools", messages=USER)
    larger = client.messages.count_tokens(
        model="gpt-tools", messages=USER, system="You are terse. " * 20, tools=TOOLS
    )
    assert 0 < small.input_tokens < larger.input_tokens


def test_count_tokens_refuses_unknown_models(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.count_tokens(model="no-such-model", messages=USER)
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
