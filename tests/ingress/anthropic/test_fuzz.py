"""Generated hostile Messages requests: valid bodies with fields made hostile (wrong types,
huge numbers, odd blocks, nesting) on every path (mock, translated, native). Every answer
is a success or a 4xx in Anthropic's shape (a 502 only when the upstream refused what the
gateway forwarded), never a 500, a hang or a dropped connection."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening.hostile import json_values, numbers
from tests.servers import RunningServer

MODELS = ["mock-agent", "mock-json", "gpt-tools", "claude-native", "nope"]
TEXT = {"type": "text", "text": "hi"}
blocks = st.one_of(
    st.just(TEXT),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "x"])},
        optional={
            "text": json_values,
            "source": json_values,
            "id": json_values,
            "name": json_values,
            "input": json_values,
            "tool_use_id": json_values,
            "content": json_values | st.lists(st.just(TEXT)),
            "is_error": json_values,
        },
    ),
    json_values,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant"]) | json_values},
    optional={"content": st.text(max_size=20) | st.lists(blocks, max_size=3) | json_values},
)
tool = st.fixed_dictionaries(
    {"name": st.sampled_from(["f", ""]) | json_values},
    optional={
        "input_schema": st.just({"type": "object"}) | json_values,
        "type": st.sampled_from(["custom", "bash_20250124"]) | json_values,
        "description": json_values,
    },
)
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(MODELS) | json_values,
    "max_tokens": numbers | json_values,
    "messages": st.lists(message, max_size=3) | json_values,
    "system": st.text(max_size=20) | st.lists(blocks, max_size=2) | json_values,
    "stream": st.booleans() | json_values,
    "tools": st.lists(tool, max_size=3) | json_values,
    "tool_choice": st.fixed_dictionaries({"type": json_values}, optional={"name": json_values}),
    "stop_sequences": st.lists(st.text(max_size=5), max_size=2) | json_values,
    "temperature": numbers | json_values,
    "metadata": st.fixed_dictionaries({"user_id": json_values}) | json_values,
    "thinking": json_values,
}


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = {
        "model": draw(st.sampled_from(MODELS)),
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    }
    for name in draw(st.lists(st.sampled_from(sorted(HOSTILE)), max_size=3, unique=True)):
        body[name] = draw(HOSTILE[name])
    return json.dumps(body).encode()  # not orjson: it refuses integers past 64 bits


@pytest.fixture(scope="module")
def fuzz_gateway(
    openai_tools_server: Any, anthropic_tools_server: Any
) -> Iterator[Callable[[bytes], httpx.Response]]:
    from gateway.app import create_app
    from gateway.config import load_config_text
    from tests.ingress.anthropic.conftest import gateway_config
    from tests.servers import serve_in_thread

    openai_tools_server[0].reset()
    anthropic_tools_server[0].reset(text="ok")
    urls = (openai_tools_server[1].url, anthropic_tools_server[1].url)
    app = create_app(load_config_text(gateway_config(*urls)))
    gateway: RunningServer
    with serve_in_thread(app) as gateway, httpx.Client(base_url=gateway.url, timeout=5) as http:
        yield lambda raw: http.post(
            "/v1/messages", content=raw, headers={"content-type": "application/json"}
        )


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=bodies())
def test_generated_messages_never_get_a_5xx(
    fuzz_gateway: Callable[[bytes], httpx.Response], raw: bytes
) -> None:
    response = fuzz_gateway(raw)
    status = response.status_code
    assert status < 500 or status == 502, (raw, status, response.text)
    if status >= 400:
        error = response.json()
        assert error["type"] == "error" and isinstance(error["error"]["message"], str)
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.rstrip().endswith(('message_stop"}', "}}")), response.text
    else:
        assert orjson.loads(response.content)["type"] == "message"
