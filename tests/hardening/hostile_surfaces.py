"""Hostile requests for the surfaces beyond Chat Completions: the Responses API, Anthropic
Messages (and count_tokens), experiment feedback and forced experiment variants.

`surface_requests` draws a `HostileRequest` for any endpoint (the OpenAI ones included),
sent with one of `KEYS` (valid keys with and without `may_force_variant`, a wrong key,
none) and hostile `x-gateway-variant` values; `keyed_yaml()` is the gateway those keys
and the experiment `ab` live in. Shared by tests/hardening/test_hostile_input.py and
benchmarks/fuzz_api.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from hypothesis import strategies as st

from tests.hardening.harness import gateway_yaml
from tests.hardening.hostile import (
    CONTENT_TYPES,
    HostileRequest,
    huge_ints,
    json_bodies,
    json_values,
    long_strings,
    numbers,
)

# key -> (id, may_force_variant, allowed models); the experiment `ab` splits mock-small
# between itself (control) and `up` (premium: weight 0, reachable only by forcing it).
KEY_POLICIES = {
    "sk-fuzz-plain-0001": ("plain", False, "[mock-small]"),
    "sk-fuzz-force-0001": ("forcer", True, "[mock-small]"),  # may force, but not reach `up`
    "sk-fuzz-wide-00001": ("wide", True, "[mock-small, up]"),
}
KEYS = [*KEY_POLICIES, "sk-wrong-key-0001", ""]
VARIANTS = ["control", "premium", "nope", "", "CONTROL", "../premium", "control,premium"]
ADMIN_KEY = os.environ.setdefault("FUZZ_ADMIN_KEY", "sk-fuzz-admin-0001")  # reads reports
KNOWN_REQUEST_ID = "fixed-id"  # what the steering header sets: feedback can find its link
MAX_FEEDBACK_BYTES = 16 * 1024  # gateway/http/experiments.py


def keyed_yaml(upstream_url: str, state: str = "") -> str:
    """`gateway_yaml` with the keys above, an admin key (${FUZZ_ADMIN_KEY}), the
    experiment `ab` on mock-small, the exact cache and an optional `state:` section (a
    YAML flow mapping)."""
    keys = "".join(
        f"    - {{id: {key_id}, hash: 'sha256:{hashlib.sha256(key.encode()).hexdigest()}', "
        f"may_force_variant: {str(force).lower()}, models: {models}}}\n"
        for key, (key_id, force, models) in KEY_POLICIES.items()
    )
    extra = (
        "auth:\n  admin_key: ${FUZZ_ADMIN_KEY}\n  keys:\n"
        + keys
        + "experiments:\n  ab:\n    applies_to: mock-small\n"
        "    variants:\n      control: {target: mock-small}\n"
        "      premium: {target: up, weight: 0}\n"
        "cache: {enabled: true}\n"  # the exact cache reads (and keys) every body served
    )
    return gateway_yaml(upstream_url, extra=extra + (f"state: {state}\n" if state else ""))


def mutated(
    draw: st.DrawFn,
    valid: dict[str, st.SearchStrategy[Any]],
    hostile: dict[str, st.SearchStrategy[Any]],
    required: tuple[str, ...],
) -> bytes:
    """A valid body (the required fields and some optional ones) with up to three fields
    made hostile or removed, plus unknown fields."""
    body = {name: draw(s) for name, s in valid.items() if name in required or draw(st.booleans())}
    for name in draw(st.lists(st.sampled_from(sorted(hostile)), max_size=3, unique=True)):
        if draw(st.integers(0, 4)) == 0:
            body.pop(name, None)
        else:
            body[name] = draw(hostile[name] | json_values)
    body.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)))
    return json.dumps(body).encode()  # not orjson: it refuses integers past 64 bits


models = st.sampled_from(["mock-small", "up", "nope", "", "premium", "ab"])
texts = st.text(max_size=40) | long_strings
bounds = st.integers(1, 4096)

# --- Responses API (/v1/responses) ---
response_parts = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["input_text", "output_text", "refusal", "input_image", "x"])},
        optional={"text": texts, "refusal": texts, "image_url": texts, "detail": texts},
    )
    | st.fixed_dictionaries({"type": json_values}, optional={"text": json_values}),
    max_size=3,
)
response_items = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "developer"])}).map(
        lambda d: {**d, "content": "hi"}
    )
    | st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "function_call_output", "function_call", "x"])},
        optional={
            "role": st.sampled_from(["user", "assistant"]) | json_values,
            "content": texts | response_parts | json_values,
            "call_id": st.text(max_size=10) | json_values,
            "output": texts | json_values,
            "name": st.text(max_size=10) | json_values,
            "arguments": st.text(max_size=20) | json_values,
        },
    ),
    max_size=4,
)
RESPONSES_VALID: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(["mock-small", "up"]),
    "input": st.sampled_from(["hi", [{"role": "user", "content": "hi"}]]),
    "instructions": st.just("Be brief."),
    "max_output_tokens": bounds,
    "stream": st.booleans(),
    "store": st.booleans(),
    "metadata": st.just({"k": "v"}),
}
RESPONSES_HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "model": models,
    "input": texts | response_items,
    "instructions": texts,
    "max_output_tokens": numbers,
    "stream": st.booleans(),
    "store": st.booleans(),
    "previous_response_id": st.sampled_from(["resp_nope", "../x", "", "resp_" + "a" * 200]),
    "metadata": st.dictionaries(st.text(max_size=80), texts, max_size=20),
    "tools": st.lists(json_values, max_size=3),
    "tool_choice": st.sampled_from(["auto", "none", "required", "x"]),
    "text": st.just({"format": {"type": "json_object"}}),
    "n": numbers,
    "max_tokens": numbers,
}

# --- Anthropic Messages (/v1/messages, /v1/messages/count_tokens) ---
blocks = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "tool_use", "tool_result", "image", "thinking", "x"])},
        optional={
            "text": texts | json_values,
            "id": st.text(max_size=10) | json_values,
            "name": st.text(max_size=10) | json_values,
            "input": json_values,
            "tool_use_id": st.text(max_size=10) | json_values,
            "content": texts | json_values,
            "source": json_values,
        },
    ),
    max_size=3,
)
anthropic_messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system"]) | json_values},
        optional={"content": texts | blocks | json_values},
    ),
    max_size=3,
)
MESSAGES_VALID: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(["mock-small", "up"]),
    "max_tokens": bounds,
    "messages": st.just([{"role": "user", "content": "hi"}]),
    "system": st.sampled_from(["Be brief.", [{"type": "text", "text": "Be brief."}]]),
    "stream": st.booleans(),
    "temperature": st.floats(0, 1),
    "stop_sequences": st.just(["END"]),
}
MESSAGES_HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "model": models,
    "max_tokens": numbers,
    "messages": anthropic_messages,
    "system": texts | blocks,
    "stream": st.booleans(),
    "temperature": numbers,
    "stop_sequences": st.lists(texts, max_size=10),
    "tools": st.lists(
        st.fixed_dictionaries({"name": st.text(max_size=70), "input_schema": json_values}),
        max_size=3,
    ),
    "tool_choice": st.fixed_dictionaries(
        {"type": st.sampled_from(["auto", "any", "tool", "none", "x"])},
        optional={"name": st.text(max_size=10)},
    ),
    "thinking": st.fixed_dictionaries(
        {"type": st.sampled_from(["enabled", "disabled", "x"]), "budget_tokens": numbers}
    ),
    "metadata": st.fixed_dictionaries({"user_id": texts | json_values}),
    "top_k": numbers,
    "n": numbers,
    "max_completion_tokens": numbers,
}

# --- Experiment feedback (/v1/feedback) ---
request_ids = st.sampled_from(
    [KNOWN_REQUEST_ID, "unknown-id", "", "a" * 129, "id with space", "../x", "\u00e9"]
)
scores = st.one_of(
    numbers,
    huge_ints,
    st.sampled_from([1e308, -1e308, 1e6, 1e6 + 1, -1e6, -1e6 - 1, 5e-324, -0.0, 0.5]),
    st.booleans(),
    st.text(max_size=10),
)
FEEDBACK_VALID: dict[str, st.SearchStrategy[Any]] = {
    "request_id": st.just(KNOWN_REQUEST_ID),
    "outcome": st.sampled_from(["accepted", "rejected", "corrected"]),
    "score": st.floats(-1e6, 1e6),
}
FEEDBACK_HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "request_id": request_ids,
    "outcome": st.sampled_from(["accepted", "ACCEPTED", "", "maybe"]),
    "score": scores,
}
NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1" * 400]


@st.composite
def feedback_bodies(draw: st.DrawFn) -> bytes:
    body = mutated(draw, FEEDBACK_VALID, FEEDBACK_HOSTILE, ("request_id",))
    how = draw(st.integers(0, 5))
    if how == 0:  # a score JSON cannot carry: NaN, infinities, an overflowing literal
        return b'{"request_id": "%s", "score": %s}' % (
            KNOWN_REQUEST_ID.encode(),
            draw(st.sampled_from(NON_FINITE)),
        )
    if how == 1:  # past the feedback body limit
        return body[:-1] + b', "pad": "' + b"x" * (MAX_FEEDBACK_BYTES + 1) + b'"}'
    return body


@st.composite
def _body_of(draw: st.DrawFn, endpoint: str) -> bytes:
    if endpoint == "responses":
        return mutated(draw, RESPONSES_VALID, RESPONSES_HOSTILE, ("model", "input"))
    if endpoint in ("messages", "count_tokens"):
        return mutated(draw, MESSAGES_VALID, MESSAGES_HOSTILE, ("model", "max_tokens", "messages"))
    if endpoint == "feedback":
        return draw(feedback_bodies())
    return draw(json_bodies())


variant_headers = st.sampled_from(VARIANTS) | st.text(max_size=20)
steering = st.fixed_dictionaries(
    {}, optional={"x-gateway-variant": variant_headers, "x-request-id": st.just(KNOWN_REQUEST_ID)}
)


@st.composite
def surface_requests(draw: st.DrawFn) -> HostileRequest:
    """Any endpoint, its own hostile body (sometimes cut short), a key, steering headers."""
    endpoint = draw(st.sampled_from(["chat", "responses", "messages", "count_tokens", "feedback"]))
    body = draw(_body_of(endpoint))
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    content_type = draw(st.sampled_from(["application/json"] * 4 + CONTENT_TYPES[1:]))
    headers = draw(steering)
    return HostileRequest(
        endpoint,
        content_type.encode("ascii", "ignore").decode(),
        body,
        tuple(sorted(headers.items())),
        key=draw(st.sampled_from(KEYS)),
    )
