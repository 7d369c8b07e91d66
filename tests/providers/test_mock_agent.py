"""The mock's agent modes, against the quickstart config: an agent loop (tool call, tool
result, answer) with the openai and anthropic SDKs, and JSON valid for the asked schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import jsonschema
import openai
import orjson
import pytest

from gateway.providers.mock_agent import example
from tests.servers import RunningServer

QUICKSTART = (Path(__file__).parents[2] / "gateway" / "quickstart.yaml").read_text()
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"enum": ["c", "f"]},
        "when": {"type": "string", "format": "date"},
    },
    "required": ["city", "days"],
}
SCHEMAS: list[dict[str, Any]] = [
    WEATHER,
    {"type": "object", "properties": {}},
    {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 3},
    {"type": ["null", "boolean"]},
    {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    {"type": "string", "minLength": 20, "maxLength": 25},
    {"const": "fixed"},
    {
        "$defs": {"item": {"type": "object", "properties": {"sku": {"type": "string"}}}},
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
        "required": ["items"],
        "additionalProperties": False,
    },
    {  # recursive: ends in a null past the depth bound, still valid
        "$defs": {
            "node": {"type": ["object", "null"], "properties": {"next": {"$ref": "#/$defs/node"}}}
        },
        "$ref": "#/$defs/node",
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_examples_are_valid_for_their_schema(schema: dict[str, Any]) -> None:
    jsonschema.validate(example(schema, schema), schema)


HOSTILE: list[Any] = [
    {"type": "array", "minItems": 10**9, "items": {"type": "string", "minLength": 10**9}},
    {
        "$defs": {"a": {"type": "array", "minItems": 99, "items": {"$ref": "#/$defs/a"}}},
        "$ref": "#/$defs/a",
    },
    {"type": "integer", "minimum": "5"},
    {"type": "number", "exclusiveMinimum": [1]},
    {"type": "string", "maxLength": -3},
    {"type": "object", "properties": [1, 2]},
    {"$ref": "http://example.com/schema"},
    {"anyOf": "nope"},
]


@pytest.mark.parametrize("schema", HOSTILE)
def test_hostile_schemas_give_small_examples_not_errors(schema: Any) -> None:
    assert len(orjson.dumps(example(schema, schema))) < 100_000


@pytest.fixture
def quickstart(start_gateway: Callable[[str], RunningServer]) -> Iterator[RunningServer]:
    yield start_gateway(QUICKSTART)


TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_openai_agent_loop_against_the_quickstart(quickstart: RunningServer, stream: bool) -> None:
    client = openai.OpenAI(base_url=f"{quickstart.url}/v1", api_key="none", max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        name, arguments, ident = "", "", ""
        for chunk in client.chat.completions.create(
            model="mock-agent", messages=messages, tools=[TOOL], stream=True
        ):
            for call in chunk.choices[0].delta.tool_calls or () if chunk.choices else ():
                ident = call.id or ident
                name += call.function.name or ""  # type: ignore[union-attr]
                arguments += call.function.arguments or ""  # type: ignore[union-attr]
    else:
        reply = client.chat.completions.create(model="mock-agent", messages=messages, tools=[TOOL])
        assert reply.choices[0].finish_reason == "tool_calls"
        call = (reply.choices[0].message.tool_calls or [])[0]
        ident, name, arguments = call.id, call.function.name, call.function.arguments
    assert name == "get_weather"
    jsonschema.validate(orjson.loads(arguments), WEATHER)
    messages += [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": ident,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": ident, "content": "21C and sunny"},
    ]
    answer = client.chat.completions.create(model="mock-agent", messages=messages, tools=[TOOL])
    assert answer.choices[0].message.content == 'The tool returned: "21C and sunny"'


def test_anthropic_agent_loop_against_the_quickstart(quickstart: RunningServer) -> None:
    client = anthropic.Anthropic(base_url=quickstart.url, api_key="none", max_retries=0)
    tools: Any = [{"name": "get_weather", "input_schema": WEATHER}]
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    with client.messages.stream(
        model="mock-agent", max_tokens=200, messages=messages, tools=tools
    ) as stream:
        turn = stream.get_final_message()
    assert turn.stop_reason == "tool_use"
    use = turn.content[0]
    assert use.type == "tool_use"
    jsonschema.validate(use.input, WEATHER)
    messages += [
        {"role": "assistant", "content": [use.model_dump(exclude_none=True)]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21C"}],
        },
    ]
    answer = client.messages.create(
        model="mock-agent", max_tokens=200, messages=messages, tools=tools
    )
    assert answer.content[0].text == 'The tool returned: "21C"'  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("response_format", "schema"),
    [
        ({"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER}}, WEATHER),
        ({"type": "json_object"}, {"type": "object", "required": ["answer"]}),
    ],
    ids=["json_schema", "json_object"],
)
def test_json_mode_answers_valid_json(
    quickstart: RunningServer, response_format: Any, schema: dict[str, Any]
) -> None:
    client = openai.OpenAI(base_url=f"{quickstart.url}/v1", api_key="none", max_retries=0)
    messages: Any = [{"role": "user", "content": "Weather?"}]
    for stream in (False, True):
        if stream:
            chunks = client.chat.completions.create(
                model="mock-json", messages=messages, response_format=response_format, stream=True
            )
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            reply = client.chat.completions.create(
                model="mock-json", messages=messages, response_format=response_format
            )
            text = reply.choices[0].message.content or ""
        jsonschema.validate(orjson.loads(text), schema)


def test_without_tools_or_format_the_agent_models_echo(quickstart: RunningServer) -> None:
    client = openai.OpenAI(base_url=f"{quickstart.url}/v1", api_key="none", max_retries=0)
    for model in ("mock-agent", "mock-json"):
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "echo me"}]
        )
        assert reply.choices[0].message.content == "echo me"
