"""The gateway in front of a real local OpenAI-compatible upstream, driven by the openai SDK."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.servers import RunningServer, seconds_until_upstream_closes
from tests.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Say hello"}]


def client(gateway: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="client-key", max_retries=0)


def test_chat_non_streaming_passes_reply_and_unknown_fields(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    reply = client(gateway).chat.completions.create(
        model="gpt-test", messages=MESSAGES, extra_body={"custom_field": {"x": 1}}
    )
    assert reply.choices[0].message.content == "Hello from upstream"
    assert reply.usage is not None and reply.usage.total_tokens == 11
    sent = upstream.requests[-1]
    assert sent["model"] == "upstream-model"
    assert sent["custom_field"] == {"x": 1}


def test_client_credentials_never_reach_upstream(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-test", "messages": MESSAGES},
        headers={"authorization": "Bearer client-key", "x-api-key": "client-key-2"},
    )
    headers = upstream.headers[-1]
    assert headers["authorization"] == "Bearer sk-upstream-secret-123456"
    assert "x-api-key" not in headers
    assert "client-key" not in str(headers)


def test_streaming_relays_chunks_and_hides_injected_usage(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    chunks = list(
        client(gateway).chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "part0 part1 part2 "
    assert all(c.usage is None for c in chunks)
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}


def test_streaming_usage_shown_when_client_asks(gateway: RunningServer) -> None:
    chunks = list(
        client(gateway).chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_embeddings_and_models(gateway: RunningServer) -> None:
    sdk = client(gateway)
    result = sdk.embeddings.create(model="gpt-test", input=["a", "b"])
    assert [d.index for d in result.data] == [0, 1]
    assert {m.id for m in sdk.models.list()} == {"gpt-test", "mock-small"}


def test_legacy_completions_endpoint(gateway: RunningServer, upstream: FakeUpstream) -> None:
    client(gateway).completions.create(model="gpt-test", prompt="hi")
    assert upstream.requests[-1]["prompt"] == "hi"


def test_unknown_model_is_404_in_openai_format(gateway: RunningServer) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client(gateway).chat.completions.create(model="nope", messages=MESSAGES)
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]


@pytest.mark.parametrize(
    ("behaviour", "status", "error_type"),
    [
        ({"status": 400, "error_message": "bad param"}, 400, "upstream_error"),
        ({"status": 429, "retry_after": "3"}, 429, "upstream_error"),
        ({"status": 500}, 502, "upstream_error"),
        ({"hang_seconds": 3.0}, 504, "timeout"),
        ({"raw_body": b"{not json"}, 502, "upstream_error"),
    ],
)
def test_upstream_failures_map_to_clear_errors(
    gateway: RunningServer,
    upstream: FakeUpstream,
    behaviour: dict,
    status: int,
    error_type: str,
) -> None:
    upstream.reset(**behaviour)
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-test", "messages": MESSAGES},
        timeout=10,
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == error_type
    assert "sk-upstream-secret" not in response.text
    assert response.headers["x-request-id"]


def test_connection_refused_is_502(start_gateway) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import upstream_config

    gw = start_gateway(upstream_config("http://127.0.0.1:9"))
    response = httpx.post(
        f"{gw.url}/v1/chat/completions", json={"model": "gpt-test", "messages": MESSAGES}
    )
    assert response.status_code == 502
    assert "could not be reached" in response.json()["error"]["message"]


def test_upstream_error_mid_stream_becomes_error_event_and_clean_end(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    upstream.reset(chunks=5, cut_after=2)
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-test", "messages": MESSAGES, "stream": True},
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert '"error"' in lines[-2]
    with pytest.raises(openai.APIError):
        list(
            client(gateway).chat.completions.create(
                model="gpt-test", messages=MESSAGES, stream=True
            )
        )


def test_client_disconnect_mid_stream_closes_upstream_within_a_second(
    gateway: RunningServer,
    upstream_server: tuple[FakeUpstream, RunningServer],
    upstream: FakeUpstream,
) -> None:
    _, upstream_http = upstream_server
    upstream.reset(chunks=200, chunk_delay=0.05)
    seconds = seconds_until_upstream_closes(gateway.url, "gpt-test", upstream.stream_closed_at)
    assert seconds < 1.0, "upstream stream still open 1 s after the client left"
    assert upstream_http.wait_for_connections(0, timeout=1.0) == 0


def test_response_headers_carry_request_id_and_overhead(gateway: RunningServer) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-test", "messages": MESSAGES},
        headers={"x-request-id": "req-123"},
    )
    assert response.headers["x-request-id"] == "req-123"
    assert float(response.headers["x-gateway-overhead-ms"]) >= 0
