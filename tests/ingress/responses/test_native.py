"""`responses: native`: the client's Responses body reaches an upstream that speaks it, with
only the gateway's decisions applied (model name, capped output bound)."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tests.conftest import upstream_config
from tests.servers import RunningServer
from tests.tool_upstream import ToolUpstream

NATIVE = """
  native:
    kind: openai
    base_url: {url}/v1
    responses: native
caps:
  models: {{gpt-test: {{max_tokens: 64}}}}
"""


@pytest.fixture
def native_gateway(
    start_gateway: Callable[[str], RunningServer],
    tool_upstream_server: tuple[ToolUpstream, RunningServer],
    tool_upstream: ToolUpstream,
) -> RunningServer:
    url = tool_upstream_server[1].url
    config = upstream_config(url).replace("models:", NATIVE.format(url=url) + "models:", 1)
    config = config.replace(
        "{provider: up, model: upstream-model}", "{provider: native, model: upstream-native}"
    )
    return start_gateway(config)


def client(gateway: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)


def test_native_body_passes_with_model_and_bound_applied(
    native_gateway: RunningServer, tool_upstream: ToolUpstream
) -> None:
    reply = client(native_gateway).responses.create(
        model="gpt-test",
        input="search the web",
        max_output_tokens=5000,
        tools=[{"type": "web_search_preview"}],
        include=["web_search_call.action.sources"],
    )
    assert reply.output_text == "native: 1 items, 1 tools"
    sent = tool_upstream.requests[-1]
    assert sent["model"] == "upstream-native"
    assert sent["max_output_tokens"] == 64  # the cap, not the client's 5000
    assert sent["tools"] == [{"type": "web_search_preview"}]
    assert sent["include"] == ["web_search_call.action.sources"]
    assert client(native_gateway).responses.retrieve(reply.id).id == reply.id


def test_native_stream_and_chain(
    native_gateway: RunningServer, tool_upstream: ToolUpstream
) -> None:
    api = client(native_gateway)
    with api.responses.stream(model="gpt-test", input="one") as stream:
        first = stream.get_final_response()
    assert first.output_text == "native: 1 items, 0 tools"
    second = api.responses.create(model="gpt-test", input="two", previous_response_id=first.id)
    assert second.output_text == "native: 3 items, 0 tools"  # user, assistant, user
    sent = tool_upstream.requests[-1]
    assert "previous_response_id" not in sent
    assert "id" not in sent["input"][0] and sent["input"][1]["id"] == first.output[0].id
