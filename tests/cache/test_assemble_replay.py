"""Assembly of streamed chunks into a body, and replay of a body as chunks: inverse ops."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cache.assemble import assemble
from gateway.cache.replay import replay_chunks
from gateway.types import Usage

USAGE = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}


def chat_body(*choices: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": list(choices),
        "system_fingerprint": "fp",
        "usage": USAGE,
    }


def choice(index: int, finish: str = "stop", **message: Any) -> dict[str, Any]:
    return {
        "index": index,
        "finish_reason": finish,
        "logprobs": None,
        "message": {"role": "assistant", "content": None, **message},
    }


TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "lookup", "arguments": '{"city": "Vienna"}'},
}
BODIES = {
    "text": chat_body(choice(0, content="Vienna.")),
    "two-choices": chat_body(choice(0, content="A"), choice(1, "length", content="B")),
    "tool-call": chat_body(choice(0, "tool_calls", tool_calls=[TOOL_CALL])),
    "refusal": chat_body(choice(0, content=None, refusal="I can't help with that.")),
    "legacy": {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "text": "Once upon", "logprobs": None, "finish_reason": "stop"}],
        "usage": USAGE,
    },
}


@pytest.mark.parametrize("name", BODIES)
def test_replayed_chunks_assemble_back_to_the_body(name: str) -> None:
    body = BODIES[name]
    chunks = replay_chunks(body, include_usage=False)
    assert assemble(chunks, Usage(5, 7)) == body


def test_replay_starts_with_role_and_ends_with_usage_only_when_asked() -> None:
    body = BODIES["text"]
    plain = replay_chunks(body, include_usage=False)
    assert plain[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert plain[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in plain)
    with_usage = replay_chunks(body, include_usage=True)
    assert with_usage[-1] == {**with_usage[-1], "choices": [], "usage": USAGE}


def test_tool_call_arguments_split_over_chunks_are_joined() -> None:
    def delta(**d: Any) -> dict[str, Any]:
        return {
            "object": "chat.completion.chunk",
            "id": "c",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": d, "finish_reason": None}],
        }

    chunks = [
        delta(
            role="assistant",
            tool_calls=[
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": ""},
                }
            ],
        ),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '"Vienna"}'}}]),
        {
            "object": "chat.completion.chunk",
            "id": "c",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
        },
    ]
    body = assemble(chunks, None)
    assert body is not None and "usage" not in body
    assert body["choices"][0]["message"]["tool_calls"] == [TOOL_CALL]


@pytest.mark.parametrize(
    "chunks",
    [
        [],
        [{"object": "chat.completion.chunk", "choices": []}],
        [
            {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": "cut"}, "finish_reason": None}],
            }
        ],
    ],
    ids=["empty", "usage-only", "no-finish-reason"],
)
def test_unfinished_stream_assembles_to_nothing(chunks: list[dict[str, Any]]) -> None:
    assert assemble(chunks, Usage(1, 1)) is None


def test_estimated_usage_is_not_reported_as_real() -> None:
    chunks = replay_chunks(BODIES["text"], include_usage=False)
    body = assemble(chunks, Usage(5, 7, estimated=True))
    assert body is not None and "usage" not in body
