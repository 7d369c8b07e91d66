"""Two real local upstreams (OpenAI-compatible with tool calls, Anthropic Messages) and a
gateway in front of both, plus the mock's agent models."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import anthropic
import pytest

from tests.ingress.anthropic.anthropic_tools import ScriptedAnthropic
from tests.ingress.anthropic.openai_tools import ToolsUpstream
from tests.servers import RunningServer, serve_in_thread

ANTHROPIC_KEY = "sk-ant-provider-secret-987654"
os.environ.setdefault("ANTHROPIC_PROVIDER_KEY", ANTHROPIC_KEY)


def gateway_config(openai_url: str, anthropic_url: str, extra: str = "") -> str:
    return f"""
providers:
  tools:
    kind: openai
    base_url: {openai_url}/v1
    timeout: {{connect: 1, read: 2}}
  claude:
    kind: anthropic
    base_url: {anthropic_url}/v1
    api_key: ${{ANTHROPIC_PROVIDER_KEY}}
    timeout: {{connect: 1, read: 2}}
  agent:
    kind: mock
    mock: {{mode: tools, chunks: 4}}
  json:
    kind: mock
    mock: {{mode: json}}
models:
  gpt-tools:
    deployments: [{{provider: tools, model: tools-model}}]
    retry: {{attempts: 1}}
  claude-native:
    deployments: [{{provider: claude, model: claude-upstream}}]
    retry: {{attempts: 1}}
  mock-agent:
    deployments: [{{provider: agent, model: mock-agent}}]
  mock-json:
    deployments: [{{provider: json, model: mock-json}}]
{extra}
"""


@pytest.fixture(scope="session")
def openai_tools_server() -> Iterator[tuple[ToolsUpstream, RunningServer]]:
    fake = ToolsUpstream()
    with serve_in_thread(fake.app()) as server:
        yield fake, server


@pytest.fixture(scope="session")
def anthropic_tools_server() -> Iterator[tuple[ScriptedAnthropic, RunningServer]]:
    fake = ScriptedAnthropic()
    with serve_in_thread(fake.app()) as server:
        yield fake, server


@pytest.fixture
def openai_tools(openai_tools_server: tuple[ToolsUpstream, RunningServer]) -> ToolsUpstream:
    openai_tools_server[0].reset()
    return openai_tools_server[0]


@pytest.fixture
def claude(anthropic_tools_server: tuple[ScriptedAnthropic, RunningServer]) -> ScriptedAnthropic:
    anthropic_tools_server[0].reset()
    return anthropic_tools_server[0]


@pytest.fixture
def make_gateway(
    start_gateway: Callable[[str], RunningServer],
    openai_tools_server: tuple[ToolsUpstream, RunningServer],
    anthropic_tools_server: tuple[ScriptedAnthropic, RunningServer],
    openai_tools: ToolsUpstream,
    claude: ScriptedAnthropic,
) -> Callable[[str], RunningServer]:
    """A gateway in front of both fakes, with `extra` YAML sections (keys, caps ...)."""
    urls = (openai_tools_server[1].url, anthropic_tools_server[1].url)
    return lambda extra: start_gateway(gateway_config(*urls, extra=extra))


@pytest.fixture
def both_gateway(make_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_gateway("")


@pytest.fixture
def client(both_gateway: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=both_gateway.url, api_key="client-key", max_retries=0)
