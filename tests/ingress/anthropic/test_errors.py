"""Errors in Anthropic's shape: bad input (400, never 5xx), upstream failures before the
first byte (matching status and type) and after it (`event: error`), auth."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from gateway.auth.keys import hash_key
from gateway.errors import (
    AllAttemptsFailed,
    AuthenticationFailed,
    BodyTooLarge,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.ingress.anthropic.render import error_type
from tests.ingress.anthropic.anthropic_tools import ScriptedAnthropic
from tests.ingress.anthropic.openai_tools import ToolsUpstream
from tests.servers import RunningServer

USER = [{"role": "user", "content": "hi"}]
GOOD: dict[str, Any] = {"model": "gpt-tools", "max_tokens": 10, "messages": USER}
# Parses (orjson reads 1024 levels) but could never be forwarded (it writes 255).
DEEP = (
    b'{"model": "gpt-tools", "max_tokens": 5, "messages": [], "metadata": '
    + b"[" * 300
    + b"]" * 300
    + b"}"
)


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (InvalidRequest("x"), "invalid_request_error"),
        (BodyTooLarge("x"), "request_too_large"),
        (ModelNotFound("m"), "not_found_error"),
        (AuthenticationFailed("x"), "authentication_error"),
        (PermissionDenied("x"), "permission_error"),
        (RateLimited("x"), "rate_limit_error"),
        (QuotaExceeded("x"), "rate_limit_error"),
        (UpstreamError("x", upstream_status=400), "invalid_request_error"),
        (UpstreamError("x", upstream_status=429), "rate_limit_error"),
        (UpstreamError("x", upstream_status=500), "api_error"),
        (UpstreamError("x", upstream_status=529), "overloaded_error"),
        (UpstreamTimeout("x"), "timeout_error"),
        (AllAttemptsFailed([("a", UpstreamError("x", upstream_status=529))]), "overloaded_error"),
        (GatewayError("x"), "api_error"),
    ],
)
def test_every_gateway_error_has_one_anthropic_type(err: GatewayError, expected: str) -> None:
    assert error_type(err) == expected


BAD_BODIES: list[tuple[str, bytes]] = [
    ("not json", b"{nope"),
    ("array body", b"[]"),
    ("no model", orjson.dumps({"max_tokens": 5, "messages": USER})),
    ("no max_tokens", orjson.dumps({"model": "gpt-tools", "messages": USER})),
    ("max_tokens string", orjson.dumps({**GOOD, "max_tokens": "5"})),
    ("max_tokens zero", orjson.dumps({**GOOD, "max_tokens": 0})),
    ("empty messages", orjson.dumps({**GOOD, "messages": []})),
    ("system role", orjson.dumps({**GOOD, "messages": [{"role": "system", "content": "x"}]})),
    ("content number", orjson.dumps({**GOOD, "messages": [{"role": "user", "content": 5}]})),
    ("block no type", orjson.dumps({**GOOD, "messages": [{"role": "user", "content": [{}]}]})),
    (
        "unknown block",
        orjson.dumps({**GOOD, "messages": [{"role": "user", "content": [{"type": "x"}]}]}),
    ),
    (
        "text not str",
        orjson.dumps(
            {**GOOD, "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}
        ),
    ),
    (
        "image no source",
        orjson.dumps({**GOOD, "messages": [{"role": "user", "content": [{"type": "image"}]}]}),
    ),
    (
        "image bad media",
        orjson.dumps(
            {
                **GOOD,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "a,b", "data": "x"},
                            }
                        ],
                    }
                ],
            }
        ),
    ),
    (
        "tool_use no id",
        orjson.dumps(
            {
                **GOOD,
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "name": "f", "input": {}}],
                    }
                ],
            }
        ),
    ),
    (
        "tool_use input list",
        orjson.dumps(
            {
                **GOOD,
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "a", "name": "f", "input": []}],
                    }
                ],
            }
        ),
    ),
    (
        "tool_result no id",
        orjson.dumps(
            {**GOOD, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}
        ),
    ),
    ("system number", orjson.dumps({**GOOD, "system": 3})),
    ("system block", orjson.dumps({**GOOD, "system": [{"type": "image"}]})),
    ("tools not list", orjson.dumps({**GOOD, "tools": {}})),
    ("tool no schema", orjson.dumps({**GOOD, "tools": [{"name": "f"}]})),
    ("tool_choice odd", orjson.dumps({**GOOD, "tool_choice": {"type": "maybe"}})),
    ("tool_choice type list", orjson.dumps({**GOOD, "tool_choice": {"type": []}})),
    ("tool_choice str", orjson.dumps({**GOOD, "tool_choice": "auto"})),
    ("stop_sequences str", orjson.dumps({**GOOD, "stop_sequences": "END"})),
    ("temperature str", orjson.dumps({**GOOD, "temperature": "hot"})),
    ("metadata list", orjson.dumps({**GOOD, "metadata": []})),
    ("stream str", orjson.dumps({**GOOD, "stream": "yes"})),
    ("too deep", DEEP),
]


@pytest.mark.parametrize(("case", "raw"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
def test_bad_input_is_400_in_anthropics_shape(
    both_gateway: RunningServer, case: str, raw: bytes
) -> None:
    response = httpx.post(
        f"{both_gateway.url}/v1/messages",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400, (case, response.text)
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.mark.parametrize(
    ("model", "status", "error", "expected_status"),
    [
        ("gpt-tools", 429, anthropic.RateLimitError, 429),
        ("claude-native", 429, anthropic.RateLimitError, 429),
        ("gpt-tools", 500, anthropic.APIStatusError, 502),
        ("claude-native", 529, anthropic.APIStatusError, 502),
    ],
)
def test_upstream_failure_before_first_byte(
    client: anthropic.Anthropic,
    openai_tools: ToolsUpstream,
    claude: ScriptedAnthropic,
    model: str,
    status: int,
    error: type[Exception],
    expected_status: int,
) -> None:
    (claude if model == "claude-native" else openai_tools).reset(status=status)
    with pytest.raises(error) as caught:
        client.messages.create(model=model, max_tokens=10, messages=USER)
    assert caught.value.status_code == expected_status  # type: ignore[attr-defined]
    body = caught.value.body  # type: ignore[attr-defined]
    assert body["type"] == "error" and body["error"]["type"] in (
        "rate_limit_error",
        "api_error",
        "overloaded_error",
    )


@pytest.mark.parametrize("model", ["gpt-tools", "claude-native"])
def test_stream_cut_after_first_byte_ends_with_an_error_event(
    both_gateway: RunningServer,
    openai_tools: ToolsUpstream,
    claude: ScriptedAnthropic,
    model: str,
) -> None:
    (claude if model == "claude-native" else openai_tools).reset(text="a long answer", cut_after=3)
    body = {**GOOD, "model": model, "stream": True}
    response = httpx.post(f"{both_gateway.url}/v1/messages", json=body)
    assert response.status_code == 200
    last = response.text.strip().split("\n\n")[-1]
    name, data = last.split("\n", 1)
    assert name == "event: error"
    assert orjson.loads(data[6:])["type"] == "error"
    (claude if model == "claude-native" else openai_tools).reset(text="a long answer", cut_after=3)
    client = anthropic.Anthropic(base_url=both_gateway.url, api_key="k", max_retries=0)
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(**{**GOOD, "model": model}) as stream,
    ):
        stream.get_final_message()


KEY = "sk-test-anthropic-client-0123456789"


@pytest.fixture
def keyed_gateway(make_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_gateway(
        f'auth:\n  keys:\n    - {{id: agent, hash: "{hash_key(KEY)}", models: [gpt-tools]}}\n'
    )


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_key_in_x_api_key_or_authorization(keyed_gateway: RunningServer, header: str) -> None:
    value = KEY if header == "x-api-key" else f"Bearer {KEY}"
    response = httpx.post(
        f"{keyed_gateway.url}/v1/messages",
        json=GOOD,
        headers={header: value, "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "message"


def test_missing_or_wrong_key_and_forbidden_model(keyed_gateway: RunningServer) -> None:
    sdk = anthropic.Anthropic(base_url=keyed_gateway.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk.messages.create(**GOOD)
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        sdk.messages.count_tokens(model="gpt-tools", messages=USER)
    sdk = anthropic.Anthropic(base_url=keyed_gateway.url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError):
        sdk.messages.create(**{**GOOD, "model": "claude-native"})
    with pytest.raises(anthropic.PermissionDeniedError):
        sdk.messages.count_tokens(model="claude-native", messages=USER)
    assert sdk.messages.count_tokens(model="gpt-tools", messages=USER).input_tokens > 0


@pytest.mark.parametrize("model", ["gpt-tools", "claude-native"])
def test_client_leaving_mid_stream_closes_the_upstream(
    both_gateway: RunningServer,
    openai_tools: ToolsUpstream,
    claude: ScriptedAnthropic,
    model: str,
) -> None:
    upstream: Any = claude if model == "claude-native" else openai_tools
    upstream.reset(text="word " * 200, chunk_delay=0.05)
    body = {**GOOD, "model": model, "stream": True}
    with httpx.stream("POST", f"{both_gateway.url}/v1/messages", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("event: content_block_delta"):
                break
    left_at = time.monotonic()
    while not upstream.stream_closed_at and time.monotonic() < left_at + 2:
        time.sleep(0.01)
    assert upstream.stream_closed_at, "the upstream stream was never closed"
    assert upstream.stream_closed_at[0] - left_at < 1.0  # not run to its end (10 s)


MALFORMED = [
    b"not json",
    b"[1, 2]",
    b'{"choices": "x", "content": 5}',
    b'{"choices": [{"message": "text", "delta": 3}], "content": [{"type": "tool_use"}]}',
    b'{"choices": [{"index": 0, "delta": {"tool_calls": 7}}], "message": [], "usage": []}',
    b'{"type": "message_start", "message": {"usage": {"input_tokens": "x"}}, "index": "a"}',
]
ROUTES = [  # (client format, model) for each way a reply is translated or relayed
    ("anthropic", "gpt-tools"),
    ("anthropic", "claude-native"),
    ("openai", "claude-native"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("client_format", "model"), ROUTES)
@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_upstream_replies_never_crash_the_gateway(
    both_gateway: RunningServer,
    openai_tools: ToolsUpstream,
    claude: ScriptedAnthropic,
    client_format: str,
    model: str,
    stream: bool,
    raw: bytes,
) -> None:
    (claude if model == "claude-native" else openai_tools).reset(raw_reply=raw)
    path = "/v1/messages" if client_format == "anthropic" else "/v1/chat/completions"
    response = httpx.post(
        f"{both_gateway.url}{path}", json={**GOOD, "model": model, "stream": stream}
    )
    assert response.status_code < 500 or response.status_code == 502, response.text
    assert response.text  # an answer or an error in the client's shape, never a dropped socket
