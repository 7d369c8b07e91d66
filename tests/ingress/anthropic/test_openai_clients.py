"""Chat Completions clients (openai SDK, LangChain) reaching a `kind: anthropic` deployment:
the request translated to Messages, the reply and each stream event back to chat."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.ingress.anthropic.anthropic_tools import ScriptedAnthropic
from tests.ingress.anthropic.conftest import ANTHROPIC_KEY
from tests.servers import RunningServer

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
CALLS = [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Lyon"})]
MESSAGES: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris and Lyon?"},
]


def sdk(gateway: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="client-key", max_retries=0)


def test_chat_with_tools_translates_both_ways(
    both_gateway: RunningServer, claude: ScriptedAnthropic
) -> None:
    claude.reset(text="Checking.", calls=CALLS)
    reply = sdk(both_gateway).chat.completions.create(
        model="claude-native",
        messages=MESSAGES,
        tools=TOOLS,
        tool_choice="required",
        temperature=1.5,
        stop="STOP",
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    calls = choice.message.tool_calls or []
    assert [(c.function.name, orjson.loads(c.function.arguments)) for c in calls] == CALLS
    assert reply.usage is not None and reply.usage.prompt_tokens == 40
    assert reply.usage.prompt_tokens_details.cached_tokens == 30  # type: ignore[union-attr]
    sent = claude.requests[-1]
    assert sent["system"] == "Be brief."
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Lyon?"}]}
    ]
    assert sent["tools"][0]["input_schema"] == TOOLS[0]["function"]["parameters"]
    assert sent["tool_choice"] == {"type": "any"}
    assert (sent["max_tokens"], sent["temperature"], sent["stop_sequences"]) == (
        4096,
        1.0,
        ["STOP"],
    )
    assert claude.headers[-1]["x-api-key"] == ANTHROPIC_KEY


def test_stream_with_tools_and_usage(
    both_gateway: RunningServer, claude: ScriptedAnthropic
) -> None:
    claude.reset(text="Checking.", calls=CALLS, piece=1)
    stream = sdk(both_gateway).chat.completions.create(
        model="claude-native",
        messages=MESSAGES,
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, arguments, finish, usage = "", {}, None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or ():
                arguments[call.index] = arguments.get(call.index, "") + (
                    call.function.arguments or ""  # type: ignore[union-attr]
                )
    assert text == "Checking."
    assert [orjson.loads(a) for _, a in sorted(arguments.items())] == [a for _, a in CALLS]
    assert finish == "tool_calls"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (40, 7)


def test_tool_results_become_one_user_turn(
    both_gateway: RunningServer, claude: ScriptedAnthropic
) -> None:
    claude.reset(text="Both sunny.")
    calls = [
        {"id": f"toolu_{i}", "type": "function", "function": {"name": n, "arguments": "{}"}}
        for i, (n, _) in enumerate(CALLS)
    ]
    history = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "toolu_0", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny too"},
    ]
    reply = sdk(both_gateway).chat.completions.create(
        model="claude-native", messages=history, tools=TOOLS
    )
    assert reply.choices[0].message.content == "Both sunny."
    sent = claude.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in sent[2]["content"]] == ["toolu_0", "toolu_1"]


def test_completions_and_bad_tool_arguments_are_400(
    both_gateway: RunningServer, claude: ScriptedAnthropic
) -> None:
    response = httpx.post(
        f"{both_gateway.url}/v1/completions", json={"model": "claude-native", "prompt": "x"}
    )
    assert response.status_code == 400
    bad = [
        *MESSAGES,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1"}}
            ],
        },
    ]
    with pytest.raises(openai.BadRequestError):
        sdk(both_gateway).chat.completions.create(model="claude-native", messages=bad)
    assert claude.raw == []


def test_langchain_chat_openai_tools_and_stream(
    both_gateway: RunningServer, claude: ScriptedAnthropic
) -> None:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        model="claude-native", base_url=f"{both_gateway.url}/v1", api_key="k", max_retries=0
    )
    claude.reset(calls=CALLS[:1])
    message = model.bind_tools(TOOLS).invoke("Weather in Paris?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == CALLS[:1]
    claude.reset(text="Sunny in Paris today.")
    streamed = "".join(str(chunk.content) for chunk in model.stream("Weather in Paris?"))
    assert streamed == "Sunny in Paris today."


RESPONSES_TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def test_responses_client_reaches_claude_with_tools(
    both_gateway: RunningServer, claude: ScriptedAnthropic
) -> None:
    """The Responses API over a `kind: anthropic` deployment: Responses -> canonical chat ->
    Messages upstream, and the Messages reply back to a Response with function calls."""
    claude.reset(text="Checking.", calls=CALLS)
    response = sdk(both_gateway).responses.create(
        model="claude-native",
        instructions="Be brief.",
        input="Weather in Paris and Lyon?",
        tools=RESPONSES_TOOLS,
        max_output_tokens=300,
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == CALLS
    assert response.output_text == "Checking."
    sent = claude.requests[-1]
    assert sent["system"] == "Be brief."
    assert sent["max_tokens"] == 300
    assert sent["tools"][0]["name"] == "get_weather"


def test_responses_client_streams_from_claude(
    both_gateway: RunningServer, claude: ScriptedAnthropic
) -> None:
    claude.reset(text="Checking.", calls=CALLS, piece=1)
    events = list(
        sdk(both_gateway).responses.create(
            model="claude-native",
            input="Weather in Paris and Lyon?",
            tools=RESPONSES_TOOLS,
            stream=True,
        )
    )
    assert events[-1].type == "response.completed"
    final = events[-1].response
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == CALLS
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Checking."
