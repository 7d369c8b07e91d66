"""Table-driven translation: items <-> messages, chat replies -> Responses, chunks -> events."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.errors import GatewayError, InvalidRequest, UpstreamUnavailable
from gateway.ingress.responses.events import EventTranslator
from gateway.ingress.responses.items import normalize_items
from gateway.ingress.responses.parse import canonical_body, input_items, items_to_messages
from gateway.ingress.responses.render import Draft, response_object
from gateway.ingress.responses.sse import encode_event

CALL = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a":1}'}
OUTPUT = {"type": "function_call_output", "call_id": "call_1", "output": "42"}
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}

ITEMS_TO_MESSAGES: list[tuple[str, list[Any], list[dict[str, Any]]]] = [
    ("string content", [{"role": "user", "content": "hi"}], [{"role": "user", "content": "hi"}]),
    (
        "text parts",
        [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "a"},
                    {"type": "input_text", "text": "b"},
                ],
            }
        ],
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            }
        ],
    ),
    (
        "one text part is a string",
        [{"role": "user", "content": [{"type": "input_text", "text": "a"}]}],
        [{"role": "user", "content": "a"}],
    ),
    (
        "image part",
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,AA",
                        "detail": "low",
                    }
                ],
            }
        ],
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,AA", "detail": "low"},
                    }
                ],
            }
        ],
    ),
    (
        "developer is system",
        [{"role": "developer", "content": "rules"}],
        [{"role": "system", "content": "rules"}],
    ),
    (
        "assistant output_text joins",
        [
            {
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "x"},
                    {"type": "output_text", "text": "y"},
                ],
            }
        ],
        [{"role": "assistant", "content": "xy"}],
    ),
    (
        "call and output",
        [CALL, OUTPUT],
        [
            {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
    ),
    (
        "text then call: one assistant turn",
        [{"role": "assistant", "content": "let me"}, CALL],
        [{"role": "assistant", "content": "let me", "tool_calls": [TOOL_CALL]}],
    ),
    (
        "two parallel calls",
        [CALL, {**CALL, "call_id": "call_2"}],
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [TOOL_CALL, {**TOOL_CALL, "id": "call_2"}],
            }
        ],
    ),
    (
        "reasoning dropped",
        [{"type": "reasoning", "summary": []}, {"role": "user", "content": "q"}],
        [{"role": "user", "content": "q"}],
    ),
    (
        "tool output as parts",
        [
            CALL,
            {
                **OUTPUT,
                "output": [
                    {"type": "input_text", "text": "4"},
                    {"type": "input_text", "text": "2"},
                ],
            },
        ],
        [
            {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
    ),
]


@pytest.mark.parametrize(
    ("items", "messages"), [c[1:] for c in ITEMS_TO_MESSAGES], ids=[c[0] for c in ITEMS_TO_MESSAGES]
)
def test_items_to_messages(items: list[Any], messages: list[dict[str, Any]]) -> None:
    assert items_to_messages(normalize_items(items, "input")) == messages


def test_normalised_items_get_ids_and_keep_given_ones() -> None:
    items = normalize_items([{"role": "user", "content": "x"}, {**CALL, "id": "fc_given"}], "in")
    assert items[0]["id"].startswith("msg_") and items[1]["id"] == "fc_given"


def test_string_input_is_one_user_message() -> None:
    [item] = input_items({"input": "hello"})
    assert item["role"] == "user" and item["content"] == [{"type": "input_text", "text": "hello"}]


CANONICAL: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("max_output_tokens", {"max_output_tokens": 9}, {"max_tokens": 9}),
    (
        "json_object",
        {"text": {"format": {"type": "json_object"}}},
        {"response_format": {"type": "json_object"}},
    ),
    ("text format is the default", {"text": {"format": {"type": "text"}}}, {}),
    ("reasoning effort", {"reasoning": {"effort": "low"}}, {"reasoning_effort": "low"}),
    (
        "function tool",
        {"tools": [{"type": "function", "name": "f", "parameters": {}}]},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
    ),
    ("tool_choice word", {"tool_choice": "required"}, {"tool_choice": "required"}),
    ("sampling", {"temperature": 0, "top_p": 0.5}, {"temperature": 0, "top_p": 0.5}),
    ("not forwarded", {"metadata": {"a": "b"}, "store": False, "truncation": "auto"}, {}),
    ("encrypted reasoning: nothing to include", {"include": ["reasoning.encrypted_content"]}, {}),
    (
        "stream asks for usage",
        {"stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
    ),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [c[1:] for c in CANONICAL], ids=[c[0] for c in CANONICAL]
)
def test_canonical_body_fields(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = {"model": "m", "input": "hi", **fields}
    chat = canonical_body(body, [], input_items(body))
    assert {k: v for k, v in chat.items() if k not in ("model", "messages")} == expected


def test_history_comes_before_input_and_instructions_first() -> None:
    body = {"model": "m", "input": "now", "instructions": "sys"}
    history = normalize_items([{"role": "user", "content": "then"}], "h")
    chat = canonical_body(body, history, input_items(body))
    assert [m["content"] for m in chat["messages"]] == ["sys", "then", "now"]


def test_built_in_tools_pass_only_natively() -> None:
    body = {"model": "m", "input": "hi", "tools": [{"type": "web_search_preview"}]}
    with pytest.raises(InvalidRequest, match="web_search_preview"):
        canonical_body(body, [], input_items(body))
    assert "tools" not in canonical_body(body, [], input_items(body), native=True)


def chat_reply(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "choices": [{"message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 2,
            "prompt_tokens_details": {"cached_tokens": 1},
        },
    }


REPLIES: list[tuple[str, dict[str, Any], str, list[str], str | None]] = [
    ("text", chat_reply({"content": "hi"}), "completed", ["message"], None),
    (
        "tool call",
        chat_reply({"content": None, "tool_calls": [TOOL_CALL]}, "tool_calls"),
        "completed",
        ["function_call"],
        None,
    ),
    (
        "text and call",
        chat_reply({"content": "ok", "tool_calls": [TOOL_CALL]}, "tool_calls"),
        "completed",
        ["message", "function_call"],
        None,
    ),
    (
        "cut by length",
        chat_reply({"content": "hal"}, "length"),
        "incomplete",
        ["message"],
        "max_output_tokens",
    ),
    ("filtered", chat_reply({"content": ""}, "content_filter"), "incomplete", [], "content_filter"),
]


@pytest.mark.parametrize(
    ("chat", "status", "kinds", "reason"), [c[1:] for c in REPLIES], ids=[c[0] for c in REPLIES]
)
def test_chat_reply_to_response(
    chat: dict[str, Any], status: str, kinds: list[str], reason: str | None
) -> None:
    response = response_object(Draft({"model": "m"}), chat)
    assert response["status"] == status
    assert [item["type"] for item in response["output"]] == kinds
    assert (response["incomplete_details"] or {}).get("reason") == reason
    assert response["usage"]["input_tokens"] == 5 and response["usage"]["total_tokens"] == 7
    assert response["usage"]["input_tokens_details"] == {"cached_tokens": 1}


def delta(d: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def run_stream(chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    translator = EventTranslator(Draft({"model": "m"}))
    events = translator.start()
    for chunk in chunks:
        events += translator.feed(chunk)
    final, closing = translator.finish()
    events += closing
    events.append(translator.terminal(final))
    return events, final


def call_delta(arguments: str, head: bool = False) -> dict[str, Any]:
    call: dict[str, Any] = {"index": 0, "function": {"arguments": arguments}}
    if head:
        call.update(id="call_1", type="function")
        call["function"]["name"] = "f"
    return delta({"tool_calls": [call]})


START = ["created", "in_progress"]
TEXT_OPEN = ["output_item.added", "content_part.added"]
TEXT_CLOSE = ["output_text.done", "content_part.done", "output_item.done"]
CALL_CLOSE = ["function_call_arguments.done", "output_item.done"]
TEXT_DELTA = "output_text.delta"
ARGS_DELTA = "function_call_arguments.delta"
USAGE_ONLY = {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

STREAMS: list[tuple[str, list[dict[str, Any]], list[str]]] = [
    (
        "text",
        [
            delta({"role": "assistant"}),
            delta({"content": "he"}),
            delta({"content": "y"}),
            delta({}, "stop"),
        ],
        [*START, *TEXT_OPEN, TEXT_DELTA, TEXT_DELTA, *TEXT_CLOSE, "completed"],
    ),
    (
        "tool call",
        [call_delta("", head=True), call_delta('{"a"'), call_delta(":1}"), delta({}, "tool_calls")],
        [*START, "output_item.added", ARGS_DELTA, ARGS_DELTA, *CALL_CLOSE, "completed"],
    ),
    (
        "text then call",
        [delta({"content": "ok"}), call_delta("{}", head=True), delta({}, "tool_calls")],
        [
            *START,
            *TEXT_OPEN,
            TEXT_DELTA,
            *TEXT_CLOSE,
            "output_item.added",
            ARGS_DELTA,
            *CALL_CLOSE,
            "completed",
        ],
    ),
    (
        "cut by length",
        [delta({"content": "ab"}), delta({}, "length")],
        [*START, *TEXT_OPEN, TEXT_DELTA, *TEXT_CLOSE, "incomplete"],
    ),
    (
        "usage only chunk",
        [delta({"content": "a"}, "stop"), USAGE_ONLY],
        [*START, *TEXT_OPEN, TEXT_DELTA, *TEXT_CLOSE, "completed"],
    ),
]


@pytest.mark.parametrize(("chunks", "kinds"), [c[1:] for c in STREAMS], ids=[c[0] for c in STREAMS])
def test_chunks_to_events(chunks: list[dict[str, Any]], kinds: list[str]) -> None:
    events, final = run_stream(chunks)
    assert [e["type"].removeprefix("response.") for e in events] == kinds
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    ids = {item["id"] for item in final["output"]}
    assert {e["item_id"] for e in events if "item_id" in e} <= ids
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done == final["output"]


UNICODE_TEXT = [delta({"role": "assistant", "content": 'é\n"<'}), delta({"content": "\u2028😀"})]


@pytest.mark.parametrize(
    "chunks",
    [*(c[1] for c in STREAMS), UNICODE_TEXT],
    ids=[*(c[0] for c in STREAMS), "unicode text"],
)
def test_encoded_events_are_the_dict_events_encoded(chunks: list[dict[str, Any]]) -> None:
    """The hot path (templates, a Response encoded once) writes the same bytes."""
    draft = Draft({"model": "m", "stream": True})
    events = EventTranslator(copy.deepcopy(draft))
    expected = [encode_event(event) for event in events.start()]
    for chunk in chunks:
        expected += [encode_event(event) for event in events.feed(copy.deepcopy(chunk))]
    final, closing = events.finish()
    expected += [encode_event(event) for event in [*closing, events.terminal(final)]]

    encoded = EventTranslator(draft)
    written = encoded.start_encoded() + b"".join(encoded.feed_encoded(c) for c in chunks)
    final, closing = encoded.finish_encoded()
    written += closing
    written += encoded.terminal_encoded(final, orjson.dumps(final))
    assert written == b"".join(expected)


def test_stream_and_complete_reply_give_the_same_output() -> None:
    _, streamed = run_stream(
        [
            delta({"content": "hi"}),
            delta(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "function": {"name": "f", "arguments": '{"a":1}'},
                        }
                    ]
                }
            ),
            delta({}, "tool_calls"),
        ]
    )
    whole = response_object(
        Draft({"model": "m"}),
        chat_reply({"content": "hi", "tool_calls": [TOOL_CALL]}, "tool_calls"),
    )

    def strip(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in item.items() if k != "id"} for item in output]

    assert strip(streamed["output"]) == strip(whole["output"])


@pytest.mark.parametrize("err", [UpstreamUnavailable("gone"), GatewayError("bug")])
def test_failure_after_the_first_byte_is_response_failed(err: GatewayError) -> None:
    translator = EventTranslator(Draft({"model": "m"}))
    translator.start()
    translator.feed(delta({"content": "par"}))
    event = translator.failed(err)
    assert event["type"] == "response.failed" and event["sequence_number"] == 5
    assert event["response"]["status"] == "failed"
    assert event["response"]["error"]["message"] == err.message
    assert event["response"]["output"][0]["status"] == "incomplete"
