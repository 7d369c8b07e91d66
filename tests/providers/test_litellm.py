"""The litellm provider in front of a real local fake Anthropic, driven by the openai SDK.

An audit hook refuses (and records) every connection or DNS lookup that is not loopback
while these tests run: litellm must never reach the internet for price maps or tokenizers.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from gateway.config import load_config_text
from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from tests.anthropic_upstream import FakeAnthropic
from tests.network_guard import NetworkGuard
from tests.servers import RunningServer, seconds_until_upstream_closes, serve_in_thread
from tests.upstream import FakeUpstream

KEY = "sk-ant-test-secret-123456"
os.environ.setdefault("ANTHROPIC_TEST_KEY", KEY)
MESSAGES = [{"role": "user", "content": "Say hello"}]
# Run first in a fresh interpreter, so what it imports is checked too.
GUARDED = (
    "import sys\nfrom tests.network_guard import NetworkGuard\nguard = NetworkGuard(active=True)\n"
)


@pytest.fixture(scope="session")
def network_guard() -> NetworkGuard:
    return NetworkGuard()


@pytest.fixture(autouse=True)
def no_network_beyond_loopback(network_guard: NetworkGuard) -> Iterator[None]:
    network_guard.attempts.clear()
    network_guard.active = True
    try:
        yield
    finally:
        network_guard.active = False
    assert network_guard.attempts == [], "tried to reach the network beyond loopback"


@pytest.fixture(scope="session")
def litellm_imported(network_guard: NetworkGuard) -> None:
    """Import and warm litellm (seconds) before a gateway starts, not in its start-up deadline."""
    from gateway.providers.litellm import _warm_up

    network_guard.active = True
    try:
        _warm_up("anthropic")
    finally:
        network_guard.active = False
    assert network_guard.attempts == []


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[tuple[FakeAnthropic, RunningServer]]:
    fake = FakeAnthropic()
    with serve_in_thread(fake.app()) as server:
        yield fake, server


@pytest.fixture
def anthropic(anthropic_server: tuple[FakeAnthropic, RunningServer]) -> FakeAnthropic:
    fake, _ = anthropic_server
    fake.reset()
    return fake


def litellm_config(base_url: str) -> str:
    return f"""
providers:
  claude:
    kind: litellm
    litellm_provider: anthropic
    base_url: {base_url}
    api_key: ${{ANTHROPIC_TEST_KEY}}
    timeout: {{connect: 1, read: 0.5}}
    headers: {{x-team: platform}}
models:
  claude-test:
    deployments:
      - {{provider: claude, model: claude-upstream}}
"""


@pytest.fixture
def gateway(
    litellm_imported: None,
    start_gateway: Callable[[str], RunningServer],
    anthropic_server: tuple[FakeAnthropic, RunningServer],
    anthropic: FakeAnthropic,
) -> RunningServer:
    _, server = anthropic_server
    return start_gateway(litellm_config(server.url))


def client(gateway: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="client-key", max_retries=0)


def test_chat_non_streaming_translates_content_usage_and_passes_unknown_fields(
    gateway: RunningServer, anthropic: FakeAnthropic
) -> None:
    reply = client(gateway).chat.completions.create(
        model="claude-test",
        messages=MESSAGES,
        max_tokens=50,
        frequency_penalty=0.5,  # Anthropic has none: dropped, not an error
        extra_body={"top_k": 3},
    )
    assert reply.choices[0].message.content == "Hello from Anthropic"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12, 5)
    sent = anthropic.requests[-1]
    assert sent["model"] == "claude-upstream"
    assert sent["max_tokens"] == 50
    assert sent["top_k"] == 3
    assert "frequency_penalty" not in sent
    assert sent["messages"][0]["role"] == "user"


def test_upstream_gets_configured_key_and_headers_never_the_clients(
    gateway: RunningServer, anthropic: FakeAnthropic
) -> None:
    httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "claude-test", "messages": MESSAGES},
        headers={"authorization": "Bearer client-key", "x-api-key": "client-key-2"},
    )
    headers = anthropic.headers[-1]
    assert headers["x-api-key"] == KEY
    assert headers["x-team"] == "platform"
    assert "authorization" not in headers
    assert "client-key" not in str(headers)


@pytest.mark.parametrize("client_wants_usage", [False, True])
def test_streaming_assembles_text_and_shows_usage_only_when_asked(
    gateway: RunningServer, anthropic: FakeAnthropic, client_wants_usage: bool
) -> None:
    options = {"stream_options": {"include_usage": True}} if client_wants_usage else {}
    chunks = list(
        client(gateway).chat.completions.create(
            model="claude-test", messages=MESSAGES, stream=True, **options
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "part0 part1 part2 "
    assert anthropic.requests[-1]["stream"] is True
    with_usage = [c for c in chunks if c.usage is not None]
    if client_wants_usage:
        assert with_usage == [chunks[-1]] and chunks[-1].choices == []
        assert chunks[-1].usage.prompt_tokens == 12  # type: ignore[union-attr]
        assert chunks[-1].usage.completion_tokens == 3  # type: ignore[union-attr]
    else:
        assert with_usage == []


def test_legacy_completions_are_translated(gateway: RunningServer) -> None:
    reply = client(gateway).completions.create(model="claude-test", prompt="hi", max_tokens=9)
    assert reply.choices[0].text == "Hello from Anthropic"


@pytest.mark.parametrize(
    ("behaviour", "status", "sdk_error"),
    [
        ({"status": 400, "error_message": f"bad field for {KEY}"}, 400, openai.BadRequestError),
        ({"status": 429}, 429, openai.RateLimitError),
        ({"status": 529, "error_message": "Overloaded"}, 502, openai.InternalServerError),
        ({"hang_seconds": 1.0}, 504, openai.InternalServerError),
    ],
)
def test_upstream_failures_become_openai_errors_without_the_key(
    gateway: RunningServer,
    anthropic: FakeAnthropic,
    behaviour: dict[str, Any],
    status: int,
    sdk_error: type[openai.APIStatusError],
) -> None:
    anthropic.reset(**behaviour)
    with pytest.raises(sdk_error) as info:
        client(gateway).chat.completions.create(model="claude-test", messages=MESSAGES)
    assert info.value.status_code == status
    error = info.value.body
    assert isinstance(error, dict) and error["message"]
    assert KEY not in str(error)
    if behaviour.get("error_message"):  # the provider's own words reach the client
        assert behaviour["error_message"].split(" for ")[0] in error["message"]


def test_connection_refused_is_502(
    litellm_imported: None, start_gateway: Callable[[str], RunningServer]
) -> None:
    gw = start_gateway(litellm_config("http://127.0.0.1:9"))
    with pytest.raises(openai.InternalServerError) as info:
        client(gw).chat.completions.create(model="claude-test", messages=MESSAGES)
    assert info.value.status_code == 502
    assert "could not be reached" in str(info.value.body)


@pytest.mark.parametrize("field", ["api_base", "mock_response", "aws_bedrock_runtime_endpoint"])
def test_fields_litellm_would_read_as_settings_are_refused(
    gateway: RunningServer, anthropic: FakeAnthropic, field: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).chat.completions.create(
            model="claude-test", messages=MESSAGES, extra_body={field: "http://evil.example"}
        )
    assert info.value.body["param"] == field  # type: ignore[index]
    assert anthropic.requests == []


def test_client_disconnect_mid_stream_closes_upstream_within_a_second(
    gateway: RunningServer,
    anthropic_server: tuple[FakeAnthropic, RunningServer],
    anthropic: FakeAnthropic,
) -> None:
    _, upstream_http = anthropic_server
    anthropic.reset(chunks=200, chunk_delay=0.05)
    seconds = seconds_until_upstream_closes(gateway.url, "claude-test", anthropic.stream_closed_at)
    assert seconds < 1.0, "upstream stream still open 1 s after the client left"
    assert upstream_http.wait_for_connections(0, timeout=1.0) == 0


def test_embeddings_and_unknown_fields_through_an_openai_family_provider(
    litellm_imported: None,
    start_gateway: Callable[[str], RunningServer],
    upstream_server: tuple[FakeUpstream, RunningServer],
    upstream: FakeUpstream,
) -> None:
    _, server = upstream_server
    gw = start_gateway(
        f"""
providers:
  oai:
    kind: litellm
    litellm_provider: openai
    base_url: {server.url}/v1
    api_key: ${{ANTHROPIC_TEST_KEY}}
models:
  emb:
    deployments: [{{provider: oai, model: text-emb}}]
"""
    )
    result = client(gw).embeddings.create(model="emb", input=["a", "b"])
    assert [d.index for d in result.data] == [0, 1]
    sent = upstream.requests[-1]
    assert (sent["model"], sent["input"]) == ("text-emb", ["a", "b"])
    client(gw).chat.completions.create(model="emb", messages=MESSAGES, extra_body={"x_tag": 1})
    assert upstream.requests[-1]["x_tag"] == 1
    assert upstream.headers[-1]["authorization"] == f"Bearer {KEY}"


@pytest.fixture
async def provider(
    litellm_imported: None,
    anthropic_server: tuple[FakeAnthropic, RunningServer],
    anthropic: FakeAnthropic,
) -> Any:
    from gateway.providers.litellm import LiteLLMProvider

    _, server = anthropic_server
    config = load_config_text(litellm_config(server.url)).providers["claude"]
    provider = LiteLLMProvider("claude", config)
    yield provider
    await provider.aclose()


@pytest.mark.parametrize(
    ("behaviour", "error_class", "upstream_status", "retryable", "retry_after"),
    [
        ({"status": 400}, UpstreamError, 400, False, None),
        ({"status": 401}, UpstreamError, 401, False, None),
        ({"status": 429, "retry_after": "3"}, UpstreamError, 429, True, 3.0),
        ({"status": 529}, UpstreamError, 500, True, None),  # litellm reports 529 as 500
        ({"hang_seconds": 1.0}, UpstreamTimeout, None, True, None),
    ],
)
async def test_provider_classifies_failures_once(
    provider: Any,
    anthropic: FakeAnthropic,
    behaviour: dict[str, Any],
    error_class: type[UpstreamError],
    upstream_status: int | None,
    retryable: bool,
    retry_after: float | None,
) -> None:
    anthropic.reset(**behaviour)
    with pytest.raises(GatewayError) as info:
        await provider.send("chat", {"model": "m", "messages": MESSAGES}, stream=False)
    error = info.value
    assert type(error) is error_class
    assert (error.upstream_status, error.retryable, error.retry_after) == (
        upstream_status,
        retryable,
        retry_after,
    )
    assert len(anthropic.requests) == 1  # litellm itself never retries


async def test_provider_unreachable_is_upstream_unavailable(litellm_imported: None) -> None:
    from gateway.providers.litellm import LiteLLMProvider

    config = load_config_text(litellm_config("http://127.0.0.1:9")).providers["claude"]
    provider = LiteLLMProvider("claude", config)
    try:
        with pytest.raises(UpstreamUnavailable):
            await provider.send("chat", {"model": "m", "messages": MESSAGES}, stream=False)
    finally:
        await provider.aclose()


async def test_provider_stream_cut_short_raises_instead_of_ending(
    provider: Any, anthropic: FakeAnthropic
) -> None:
    anthropic.reset(cut_after=2)
    reply = await provider.send("chat", {"model": "m", "messages": MESSAGES}, stream=True)
    assert reply.stream is not None
    received = []
    with pytest.raises(UpstreamError):
        async for payload in reply.stream:
            received.append(payload)
    assert len(received) == 2


async def test_closing_an_unread_stream_releases_the_upstream(
    provider: Any, anthropic: FakeAnthropic
) -> None:
    anthropic.reset(chunks=200, chunk_delay=0.05)
    reply = await provider.send("chat", {"model": "m", "messages": MESSAGES}, stream=True)
    await reply.close()
    closed_by = time.monotonic() + 1.0
    while not anthropic.stream_closed_at and time.monotonic() < closed_by:
        await asyncio.sleep(0.01)
    assert anthropic.stream_closed_at, "upstream stream still open 1 s after the reply closed"


async def test_provider_stream_ends_with_one_usage_only_chunk(
    provider: Any, anthropic: FakeAnthropic
) -> None:
    reply = await provider.send("completions", {"model": "m", "prompt": "hi"}, stream=True)
    assert reply.stream is not None
    chunks = [orjson.loads(payload) async for payload in reply.stream]
    assert [c for c in chunks if "usage" in c] == [chunks[-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 12
    assert "".join(c["choices"][0]["text"] for c in chunks[:-1]) == "part0 part1 part2 "


def _run_guarded(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", GUARDED + code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_importing_the_provider_stays_off_the_network() -> None:
    out = _run_guarded(
        "import gateway.providers.litellm, litellm\n"
        "print(guard.attempts, bool(litellm.model_cost))\n"
    )
    assert out.strip() == "[] True"


def test_litellm_is_not_imported_without_a_litellm_provider() -> None:
    out = _run_guarded(
        "from starlette.testclient import TestClient\n"
        "from gateway.app import create_app\n"
        "from gateway.config import load_config\n"
        "with TestClient(create_app(load_config('gateway/quickstart.yaml'))) as http:\n"
        "    http.get('/health')\n"
        "print('litellm' in sys.modules)\n"
    )
    assert out.strip() == "False"
