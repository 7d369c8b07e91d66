"""Hostile requests for the HTTP API, shared by the regular suite and benchmarks/fuzz_api.py.

`hostile_requests()` draws an OpenAI request (endpoint, headers, body bytes) that mixes
valid fields with wrong types, huge or negative numbers, deep nesting, long strings,
invalid UTF-8 and bad JSON (the other surfaces: tests/hardening/hostile_surfaces.py).
`check_answer()` states what every answer must be: never a 5xx; an error is the
endpoint's error body; a success is a well-formed reply or SSE stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import strategies as st

ENDPOINTS = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
    "responses": "/v1/responses",
    "messages": "/v1/messages",
    "count_tokens": "/v1/messages/count_tokens",
    "feedback": "/v1/feedback",
}
ANTHROPIC = frozenset({"messages", "count_tokens"})  # errors in Anthropic's shape
MODELS = ["mock-small", "up", "nope", "", "../up", "http://evil.example/v1", "up/../../x"]
FIELDS_READ = ["model", "messages", "prompt", "input", "stream", "stream_options"]
FIELDS_READ += ["max_tokens", "max_completion_tokens", "n", "best_of"]
CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "",
    "\u00e9/\u00e9",
]

huge_ints = st.sampled_from([0, -1, -(2**63), 2**63 - 1, 2**64, 10**30, -(10**30)])
numbers = st.one_of(st.integers(), huge_ints, st.floats(allow_nan=False, allow_infinity=False))
long_strings = st.integers(1000, 8000).map(lambda n: "\u00e9" * n)  # cheap to draw
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=30), long_strings)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant"]) | json_values},
        optional={"content": st.text(max_size=50) | json_values},
    )
    | json_values,
    max_size=3,
)
field_values: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(MODELS) | json_values,
    "messages": messages | json_values,
    "prompt": st.text(max_size=40) | json_values,
    "input": st.text(max_size=40) | st.lists(st.text(max_size=10), max_size=3) | json_values,
    "stream": st.booleans() | json_values,
    "stream_options": st.just({"include_usage": True}) | json_values,
    "max_tokens": numbers | json_values,
    "max_completion_tokens": numbers | json_values,
    "n": numbers | json_values,
    "best_of": numbers | json_values,
}


valid_values: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(["mock-small", "up"]),
    "messages": st.just([{"role": "user", "content": "hi"}]),
    "prompt": st.just("hi"),
    "input": st.sampled_from(["hi", ["a", "b"]]),
    "stream": st.booleans(),
    "stream_options": st.booleans().map(lambda b: {"include_usage": b}),
    "max_tokens": st.integers(1, 4096),
    "max_completion_tokens": st.integers(1, 4096),
    "n": st.integers(1, 12),  # past the default max_choices (8): a 400, never more output
    "best_of": st.integers(1, 12),
}
# Headers a client may set to steer the pipeline: forced experiment variants, request ids.
steering_headers = st.fixed_dictionaries(
    {},
    optional={
        "x-gateway-variant": st.sampled_from(["control", "premium", "", "../x", "\u00e9"])
        | st.text(max_size=20),
        "x-request-id": st.sampled_from(["fixed-id", "a" * 200, "", "id with space"]),
    },
)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """A valid request with up to three of the fields the gateway reads made hostile
    (wrong type, huge, negative, nested …) or removed, plus unknown fields."""
    body: dict[str, Any] = {
        name: draw(strategy) for name, strategy in valid_values.items() if draw(st.booleans())
    }
    body.setdefault("model", draw(valid_values["model"]))
    body.setdefault("messages", draw(valid_values["messages"]))
    for name in draw(st.lists(st.sampled_from(FIELDS_READ), max_size=3, unique=True)):
        if draw(st.integers(0, 4)) == 0:
            body.pop(name, None)
        else:
            body[name] = draw(field_values[name])
    body.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)))
    return json.dumps(body).encode()  # not orjson: it refuses integers past 64 bits


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    """A valid body with one field nested `depth` levels (orjson reads 1024, writes 255)."""
    depth = draw(st.sampled_from([10, 254, 256, 300, 1023, 1025, 5000]))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    model = draw(st.sampled_from([b'"mock-small"', b'"up"']))
    return (
        b'{"model":'
        + model
        + b',"messages":[{"role":"user","content":"hi"}],"extra":'
        + opener * depth
        + b"1"
        + closer * depth
        + b"}"
    )


def _invalid_utf8(raw: bytes) -> bytes:
    return raw.replace(b'"hi"', b'"\xff\xfe\xc3"') if b'"hi"' in raw else raw + b"\xff"


body_bytes = st.one_of(
    json_bodies(),
    json_bodies().map(lambda b: b[: max(0, len(b) - 3)]),  # cut short
    nested(),
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.sampled_from([b"", b"null", b"[]", b"1", b'"x"', b"{}", b"{" * 10, b"\x00" * 10]),
    json_bodies().map(_invalid_utf8),
)


@dataclass(frozen=True)
class HostileRequest:
    endpoint: str
    content_type: str
    body: bytes
    steering: tuple[tuple[str, str], ...] = ()
    key: str = ""

    @property
    def path(self) -> str:
        return ENDPOINTS[self.endpoint]

    def headers(self) -> dict[str, str]:
        headers = {k: v.strip() for k, v in self.steering if v.isascii() and v.isprintable()}
        if self.content_type:
            headers["content-type"] = self.content_type
        if self.key and self.endpoint in ANTHROPIC:
            headers["x-api-key"] = self.key
        elif self.key:
            headers["authorization"] = f"Bearer {self.key}"
        return headers


hostile_requests = st.builds(
    HostileRequest,
    endpoint=st.sampled_from(["chat", "completions", "embeddings"]),
    content_type=st.sampled_from(CONTENT_TYPES).filter(str.isascii),
    body=body_bytes,
    steering=steering_headers.map(lambda h: tuple(sorted(h.items()))),
)


def check_answer(status: int, content_type: str, body: bytes, endpoint: str = "chat") -> str | None:
    """Why this answer breaks the promise, or None when it keeps it: never a 5xx; an error
    in the endpoint's format (Anthropic's for Messages, else OpenAI's); a stream that ends
    as its format ends, without an error."""
    if status >= 500:
        return f"{status}: {body[:200]!r}"
    if status >= 400:
        return _error_problem(status, body, endpoint in ANTHROPIC)
    if content_type.startswith("text/event-stream"):
        return _stream_problem(body, endpoint)
    try:
        reply = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"{status} with a body that is not JSON: {body[:200]!r}"
    return None if isinstance(reply, dict) else f"{status} with a non-object body"


def _error_problem(status: int, body: bytes, anthropic: bool) -> str | None:
    try:
        answer = orjson.loads(body)
        error = answer["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"{status} without an error body: {body[:200]!r}"
    if anthropic:
        shaped = answer.get("type") == "error" and isinstance(error, dict)
        shaped = shaped and {"type", "message"} <= set(error)
    else:
        shaped = isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}
    return None if shaped else f"{status} with a malformed error: {body[:200]!r}"


def _stream_problem(body: bytes, endpoint: str) -> str | None:
    tail = body.rstrip()
    last_event = tail[tail.rfind(b"event: ") :].split(b"\n", 1)[0]  # Responses, Messages
    if endpoint in ANTHROPIC:
        ended = last_event == b"event: message_stop" and b"event: error" not in body
    elif endpoint == "responses":
        ended = last_event == b"event: response.completed"
    else:
        ended = tail.endswith(b"data: [DONE]") and b'"error"' not in body
    return None if ended else f"stream not ended cleanly: {tail[-300:]!r}"
