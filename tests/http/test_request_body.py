"""Reading a request body in-process: every malformed body is a 400 naming its field, before
any stage runs (tests/hardening/test_hostile_input.py sends them to a real gateway)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import InvalidRequest
from gateway.formats import Endpoint
from gateway.http.request import MAX_WRITE_DEPTH, parse_body

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def nested(levels: int) -> bytes:
    return orjson.dumps(CHAT)[:-1] + b',"x":' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize(
    ("endpoint", "raw"),
    [
        ("chat", orjson.dumps(CHAT)),
        ("chat", orjson.dumps({**CHAT, "stream": True, "stream_options": {"include_usage": True}})),
        ("chat", orjson.dumps({**CHAT, "max_tokens": 1, "max_completion_tokens": None, "n": 2})),
        (
            "chat",
            orjson.dumps({**CHAT, "messages": [{"role": "user", "content": [{"type": "text"}]}]}),
        ),
        ("chat", orjson.dumps({**CHAT, "messages": [{"role": "assistant", "content": None}]})),
        ("completions", orjson.dumps({"model": "m", "prompt": "p", "best_of": 2})),
        ("embeddings", orjson.dumps({"model": "m", "input": ["a", "b"]})),
        ("chat", nested(MAX_WRITE_DEPTH - 10)),
    ],
)
def test_good_bodies_pass_unchanged(endpoint: Endpoint, raw: bytes) -> None:
    assert parse_body(raw, endpoint, max_choices=8) == orjson.loads(raw)


def chat(**fields: Any) -> bytes:
    return orjson.dumps({**CHAT, **fields})


@pytest.mark.parametrize(
    ("endpoint", "raw", "param"),
    [
        ("chat", b"", None),
        ("chat", b"{not json", None),
        ("chat", b"[1, 2]", None),
        ("chat", b'"a string"', None),
        ("chat", nested(MAX_WRITE_DEPTH + 10), None),
        ("chat", orjson.dumps({"messages": CHAT["messages"]}), "model"),
        ("chat", chat(model=""), "model"),
        ("chat", chat(model=["m"]), "model"),
        ("chat", orjson.dumps({"model": "m"}), "messages"),
        ("chat", chat(messages=[]), "messages"),
        ("chat", chat(messages={"role": "user"}), "messages"),
        ("chat", chat(messages=["hi"]), "messages[0]"),
        ("chat", chat(messages=[{"content": "hi"}]), "messages[0]"),
        ("chat", chat(messages=[{"role": "user", "content": {"a": 1}}]), "messages[0].content"),
        ("chat", chat(stream="yes"), "stream"),
        ("chat", chat(stream_options=True), "stream_options"),
        ("chat", chat(max_tokens=0), "max_tokens"),
        ("chat", chat(max_tokens=1.5), "max_tokens"),
        ("chat", chat(max_tokens=True), "max_tokens"),
        ("chat", chat(max_completion_tokens="100"), "max_completion_tokens"),
        ("chat", chat(n=-1), "n"),
        ("chat", chat(n=9), "n"),  # more choices than max_choices
        ("completions", orjson.dumps({"model": "m", "prompt": "p", "best_of": 9}), "n"),
        ("completions", orjson.dumps({"model": "m"}), "prompt"),
        ("embeddings", orjson.dumps({"model": "m"}), "input"),
        ("embeddings", orjson.dumps({"model": "m", "input": "a", "stream": True}), "stream"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    endpoint: Endpoint, raw: bytes, param: str | None
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_body(raw, endpoint, max_choices=8)
    assert refused.value.http_status == 400
    assert refused.value.param == param
