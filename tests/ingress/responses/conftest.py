from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.servers import RunningServer, serve_in_thread
from tests.tool_upstream import ToolUpstream

KEY_A = "sk-gw-responses-key-a-0123456789"
KEY_B = "sk-gw-responses-key-b-0123456789"


@pytest.fixture(scope="session")
def tool_upstream_server() -> Iterator[tuple[ToolUpstream, RunningServer]]:
    fake = ToolUpstream()
    with serve_in_thread(fake.app()) as server:
        yield fake, server


@pytest.fixture
def tool_upstream(tool_upstream_server: tuple[ToolUpstream, RunningServer]) -> ToolUpstream:
    fake, _ = tool_upstream_server
    fake.requests.clear()
    return fake


def responses_config(upstream_url: str, extra: str = "") -> str:
    return f"""
providers:
  up:
    kind: openai
    base_url: {upstream_url}/v1
    api_key: ${{UPSTREAM_KEY}}
    timeout: {{connect: 1, read: 5}}
models:
  gpt-test:
    deployments:
      - {{provider: up, model: upstream-model}}
{extra}
"""


@pytest.fixture
def responses_gateway(
    start_gateway: Callable[[str], RunningServer],
    tool_upstream_server: tuple[ToolUpstream, RunningServer],
    tool_upstream: ToolUpstream,
) -> RunningServer:
    _, server = tool_upstream_server
    return start_gateway(responses_config(server.url))
