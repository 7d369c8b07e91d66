"""The openai SDK's Responses client against the real gateway and a tool-calling upstream."""

from __future__ import annotations

import json

import openai
import pytest

from tests.servers import RunningServer
from tests.tool_upstream import ToolUpstream

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def client(gateway: RunningServer, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def test_create_returns_a_response_with_text_and_usage(responses_gateway: RunningServer) -> None:
    response = client(responses_gateway).responses.create(
        model="gpt-test", input="hello there", instructions="Be brief.", max_output_tokens=50
    )
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == "You said: hello there (messages: 2)"
    assert response.usage is not None and response.usage.output_tokens == 7
    assert response.max_output_tokens == 50 and response.instructions == "Be brief."


def test_the_canonical_request_carries_every_translated_field(
    responses_gateway: RunningServer, tool_upstream: ToolUpstream
) -> None:
    client(responses_gateway).responses.create(
        model="gpt-test",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        instructions="sys",
        max_output_tokens=20,
        temperature=0.2,
        top_p=0.9,
        user="u-1",
        metadata={"k": "v"},
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
    )
    sent = tool_upstream.requests[-1]
    assert sent["model"] == "upstream-model"
    assert sent["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
    ]
    assert sent["max_tokens"] == 20 and sent["temperature"] == 0.2 and sent["top_p"] == 0.9
    assert sent["user"] == "u-1" and sent["parallel_tool_calls"] is False
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert "metadata" not in sent


def test_stream_sends_openais_events_with_matching_ids(responses_gateway: RunningServer) -> None:
    events = list(
        client(responses_gateway).responses.create(
            model="gpt-test", input="stream me please", stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == final.output_text == "You said: stream me please (messages: 1)"
    assert kinds.count("response.output_text.delta") > 5  # many small chunks, not buffered
    item_id = final.output[0].id
    assert all(e.item_id == item_id for e in events if hasattr(e, "item_id"))
    assert events[0].response.id == final.id
    assert final.usage is not None and final.usage.output_tokens == 7


def test_stream_of_a_function_call(responses_gateway: RunningServer) -> None:
    events = list(
        client(responses_gateway).responses.create(
            model="gpt-test", input="weather?", tools=[WEATHER], stream=True
        )
    )
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    final = events[-1].response
    call = final.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"} == json.loads(done.arguments)
    assert done.item_id == call.id


def test_retrieve_delete_and_input_items(responses_gateway: RunningServer) -> None:
    api = client(responses_gateway)
    created = api.responses.create(model="gpt-test", input="remember me")
    fetched = api.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    items = api.responses.input_items.list(created.id)
    assert [item.role for item in items.data] == ["user"]
    assert items.data[0].content[0].text == "remember me"
    api.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        api.responses.delete(created.id)


def test_store_false_stores_nothing(responses_gateway: RunningServer) -> None:
    api = client(responses_gateway)
    created = api.responses.create(model="gpt-test", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(created.id)


def test_three_turn_chain_carries_the_history(
    responses_gateway: RunningServer, tool_upstream: ToolUpstream
) -> None:
    api = client(responses_gateway)
    first = api.responses.create(model="gpt-test", input="one", instructions="sys")
    second = api.responses.create(model="gpt-test", input="two", previous_response_id=first.id)
    third = api.responses.create(model="gpt-test", input="three", previous_response_id=second.id)
    assert third.output_text == "You said: three (messages: 5)"
    roles = [m["role"] for m in tool_upstream.requests[-1]["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]  # instructions not kept
    assert third.previous_response_id == second.id


def test_follow_up_sent_right_after_the_last_stream_event(responses_gateway: RunningServer) -> None:
    api = client(responses_gateway)
    for _ in range(5):
        with api.responses.stream(model="gpt-test", input="first") as stream:
            for event in stream:
                if event.type == "response.completed":
                    previous = event.response.id
                    break  # the follow-up goes before the stream's connection even ends
        follow = api.responses.create(model="gpt-test", input="next", previous_response_id=previous)
        assert follow.output_text == "You said: next (messages: 3)"


def test_tool_loop_with_function_call_output(responses_gateway: RunningServer) -> None:
    api = client(responses_gateway)
    first = api.responses.create(model="gpt-test", input="weather in Paris?", tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call"
    second = api.responses.create(
        model="gpt-test",
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert second.output_text == "The tool said: sunny"


def test_structured_output_with_text_format(
    responses_gateway: RunningServer, tool_upstream: ToolUpstream
) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    response = client(responses_gateway).responses.create(
        model="gpt-test",
        input="plan a trip",
        text={"format": {"type": "json_schema", "name": "trip", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {"city": "Paris", "days": 3}
    sent = tool_upstream.requests[-1]["response_format"]
    assert sent == {
        "type": "json_schema",
        "json_schema": {"name": "trip", "schema": schema, "strict": True},
    }
    assert response.text.format.type == "json_schema"


def test_a_codex_shaped_request_is_served(responses_gateway: RunningServer) -> None:
    """What Codex-style agents send every turn: store off, encrypted reasoning asked for,
    developer messages, reasoning settings, a cache key and text verbosity."""
    response = client(responses_gateway).responses.create(
        model="gpt-test",
        instructions="You are a coding agent.",
        input=[
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "<environment_context/>"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "list files"}],
            },
        ],
        tools=[WEATHER],
        tool_choice="auto",
        parallel_tool_calls=False,
        reasoning={"effort": "medium", "summary": "auto"},
        store=False,
        stream=True,
        include=["reasoning.encrypted_content"],
        prompt_cache_key="session-1",
        text={"verbosity": "low"},
    )
    final = list(response)[-1]
    assert final.type == "response.completed"
    assert final.response.output[0].type == "function_call"
