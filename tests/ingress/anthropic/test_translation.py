"""The translators as tables: Messages -> chat request, chat reply -> Messages, chat chunks
-> Messages events, and the reverse for `kind: anthropic` (chat -> Messages, Messages
reply and events -> chat)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.ingress.anthropic.events import EventWriter
from gateway.ingress.anthropic.from_messages import ChunkWriter, chat_body
from gateway.ingress.anthropic.parse import parse_messages
from gateway.ingress.anthropic.render import message_body
from gateway.ingress.anthropic.to_messages import messages_request

BASE: dict[str, Any] = {"model": "m", "max_tokens": 5}
USER = {"role": "user", "content": "hi"}
SCHEMA = {"type": "object", "properties": {}}

PARSE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    (
        "string system",
        {"system": "Be terse.", "messages": [USER]},
        {"messages": [{"role": "system", "content": "Be terse."}, USER]},
        [],
    ),
    (
        "system blocks lose cache_control",
        {
            "system": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}],
            "messages": [USER],
        },
        {"messages": [{"role": "system", "content": [{"type": "text", "text": "a"}]}, USER]},
        [],
    ),
    (
        "url image",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}}
                    ],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/i.png"}}],
                }
            ]
        },
        [],
    ),
    (
        "assistant text + tool_use, thinking dropped",
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hm", "signature": "s"},
                        {"type": "text", "text": "ok"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                    ],
                },
            ]
        },
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": "ok",
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a":1}'},
                        }
                    ],
                },
            ]
        },
        ["thinking blocks"],
    ),
    (
        "two results, then text",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [
                                {"type": "text", "text": "a"},
                                {"type": "text", "text": "b"},
                            ],
                        },
                        {
                            "type": "tool_result",
                            "tool_use_id": "t2",
                            "is_error": True,
                            "content": "boom",
                        },
                        {"type": "text", "text": "go on"},
                    ],
                }
            ]
        },
        {
            "messages": [
                {"role": "tool", "tool_call_id": "t1", "content": "a\nb"},
                {"role": "tool", "tool_call_id": "t2", "content": "[tool error] boom"},
                {"role": "user", "content": [{"type": "text", "text": "go on"}]},
            ]
        },
        [],
    ),
    (
        "sampling, stops, user, top_k and thinking",
        {
            "messages": [USER],
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 4,
            "stop_sequences": ["X"],
            "metadata": {"user_id": "u1"},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
        {"messages": [USER], "temperature": 0.2, "top_p": 0.9, "stop": ["X"], "user": "u1"},
        ["top_k", "thinking"],
    ),
    (
        "tools and tool_choice tool, no parallel",
        {
            "messages": [USER],
            "tools": [{"name": "f", "description": "d", "input_schema": SCHEMA}],
            "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        },
        {
            "messages": [USER],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "f", "parameters": SCHEMA, "description": "d"},
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": False,
        },
        [],
    ),
    (
        "tool_choice any / none",
        {"messages": [USER], "tool_choice": {"type": "any"}},
        {"messages": [USER], "tool_choice": "required"},
        [],
    ),
    (
        "unread fields are named, odd names never",
        {"messages": [USER], "output_format": {}, "Weird\r\nName": 1, "x" * 60: 2},
        {"messages": [USER]},
        ["output_format"],
    ),
    (
        "stream asks for usage",
        {"messages": [USER], "stream": True},
        {"messages": [USER], "stream": True, "stream_options": {"include_usage": True}},
        [],
    ),
]


@pytest.mark.parametrize(
    ("case", "raw", "expected", "dropped"), PARSE_CASES, ids=[c[0] for c in PARSE_CASES]
)
def test_parse_messages(case: str, raw: dict, expected: dict, dropped: list[str]) -> None:
    parsed = parse_messages({**BASE, **raw})
    assert parsed.body == {**BASE, **expected}
    assert parsed.dropped == dropped


def _chat(message: dict[str, Any], finish: str, **choice: Any) -> dict[str, Any]:
    usage = {
        "prompt_tokens": 50,
        "completion_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 20},
    }
    return {
        "model": "up",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, **choice}],
        "usage": usage,
    }


RENDER_CASES = [
    ("text", _chat({"content": "hi"}, "stop"), [{"type": "text", "text": "hi"}], "end_turn", None),
    (
        "length",
        _chat({"content": "h"}, "length"),
        [{"type": "text", "text": "h"}],
        "max_tokens",
        None,
    ),
    (
        "tool call, bad json kept",
        _chat(
            {
                "content": None,
                "tool_calls": [
                    {"id": "c1", "function": {"name": "f", "arguments": '{"x": 2}'}},
                    {"id": "c2", "function": {"name": "g", "arguments": "not json"}},
                ],
            },
            "tool_calls",
        ),
        [
            {"type": "tool_use", "id": "c1", "name": "f", "input": {"x": 2}},
            {"type": "tool_use", "id": "c2", "name": "g", "input": {"_raw_arguments": "not json"}},
        ],
        "tool_use",
        None,
    ),
    (
        "stop sequence (vLLM stop_reason)",
        _chat({"content": "a"}, "stop", stop_reason="END"),
        [{"type": "text", "text": "a"}],
        "stop_sequence",
        "END",
    ),
    (
        "refusal",
        _chat({"content": None, "refusal": "no"}, "content_filter"),
        [{"type": "text", "text": "no"}],
        "refusal",
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "content", "reason", "sequence"),
    RENDER_CASES,
    ids=[c[0] for c in RENDER_CASES],
)
def test_message_body(
    case: str, body: dict, content: list, reason: str, sequence: str | None
) -> None:
    rendered = message_body(body, "rid", ["END"])
    assert rendered["content"] == content
    assert (rendered["stop_reason"], rendered["stop_sequence"]) == (reason, sequence)
    assert rendered["usage"] == {
        "input_tokens": 30,
        "output_tokens": 4,
        "cache_read_input_tokens": 20,
        "cache_creation_input_tokens": 0,
    }
    assert rendered["id"] == "msg_rid"


def _delta(**delta: Any) -> dict[str, Any]:
    return {"model": "up", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def _events(chunks: list[dict[str, Any]]) -> list[tuple[str, dict]]:
    writer = EventWriter("rid", None, 3)
    out = [e for chunk in chunks for e in writer.feed(chunk)] + writer.end()
    parsed = []
    for raw in out:
        name, data = raw.decode().split("\n", 1)
        parsed.append((name.removeprefix("event: "), orjson.loads(data[6:].strip())))
    return parsed


def _call(index: int, *, ident: str | None = None, name: str | None = None, args: str = "") -> dict:
    function: dict[str, Any] = {"arguments": args}
    if name:
        function["name"] = name
    return {"index": index, **({"id": ident} if ident else {}), "function": function}


def test_events_text_then_interleaved_parallel_calls() -> None:
    finish = {"model": "up", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}
    events = _events(
        [
            _delta(role="assistant", content="Let me "),
            _delta(content="look."),
            _delta(tool_calls=[_call(0, ident="a", name="f", args='{"x"')]),
            _delta(tool_calls=[_call(1, ident="b", name="g", args="{}")]),
            _delta(tool_calls=[_call(0, args=": 1}")]),  # a late piece of the first call
            finish,
            usage,
        ]
    )
    names = [n for n, _ in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    json_parts: dict[int, str] = {}
    for name, data in events:
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta":
            json_parts[data["index"]] = (
                json_parts.get(data["index"], "") + data["delta"]["partial_json"]
            )
    assert {i: orjson.loads(p) for i, p in json_parts.items()} == {1: {"x": 1}, 2: {}}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert events[-2][1]["usage"]["input_tokens"] == 9


def test_events_wait_for_a_tool_name_and_handle_empty_streams() -> None:
    events = _events(
        [
            _delta(tool_calls=[_call(0, ident="a", args='{"q"')]),
            _delta(tool_calls=[{"index": 0, "function": {"name": "late", "arguments": ":2}"}}]),
        ]
    )
    start = next(d for n, d in events if n == "content_block_start")
    assert start["content_block"]["name"] == "late"
    deltas = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
    assert "".join(deltas) == '{"q":2}'
    empty = _events([])
    assert [n for n, _ in empty] == ["message_start", "message_delta", "message_stop"]
    assert empty[1][1]["usage"]["input_tokens"] == 3  # the estimate, when nothing was reported


TO_MESSAGES_CASES = [
    (
        "system and developer join",
        {
            "messages": [
                {"role": "system", "content": "a"},
                {"role": "developer", "content": [{"type": "text", "text": "b"}]},
                USER,
            ]
        },
        {
            "system": "a\n\nb",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        },
    ),
    (
        "data url image",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}
                    ],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"},
                        }
                    ],
                }
            ]
        },
    ),
    (
        "tool choice and no parallel, top_k through",
        {
            "messages": [USER],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": False,
            "top_k": 3,
            "max_completion_tokens": 9,
        },
        {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
            "top_k": 3,
            "max_tokens": 9,
        },
    ),
]


@pytest.mark.parametrize(
    ("case", "chat", "expected"), TO_MESSAGES_CASES, ids=[c[0] for c in TO_MESSAGES_CASES]
)
def test_messages_request(case: str, chat: dict, expected: dict) -> None:
    out = messages_request({"model": "m", **chat}, stream=False)
    assert out == {"model": "m", "max_tokens": chat.get("max_completion_tokens", 4096), **expected}


def test_chat_body_and_chunks_from_messages() -> None:
    message = {
        "id": "msg_1",
        "model": "c",
        "stop_reason": "tool_use",
        "content": [
            {"type": "thinking", "thinking": "x"},
            {"type": "text", "text": "a"},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"k": [1]}},
        ],
        "usage": {
            "input_tokens": 3,
            "cache_read_input_tokens": 5,
            "cache_creation_input_tokens": 2,
            "output_tokens": 4,
        },
    }
    body, usage = chat_body(message)
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"k":[1]}'
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (10, 4)
    writer = ChunkWriter()
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "model": "c",
                "usage": {"input_tokens": 3, "output_tokens": 1},
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"k"'},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": ":1}"},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"output_tokens": 6},
        },
        {"type": "message_stop"},
    ]
    chunks = [orjson.loads(c) for e in events for c in writer.feed(e)]
    arguments = "".join(
        call["function"]["arguments"]
        for c in chunks
        for ch in c["choices"]
        for call in ch["delta"].get("tool_calls", ())
    )
    assert arguments == '{"k":1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert (
        chunks[-1]["usage"]["prompt_tokens"] == 3 and chunks[-1]["usage"]["completion_tokens"] == 6
    )
    assert writer.finished
