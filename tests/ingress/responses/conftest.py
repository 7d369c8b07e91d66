from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import upstream_config
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


@pytest.fixture
def make_responses_gateway(
    start_gateway: Callable[[str], RunningServer],
    tool_upstream_server: tuple[ToolUpstream, RunningServer],
    tool_upstream: ToolUpstream,
) -> Callable[[str], RunningServer]:
    """A gateway whose `gpt-test` is the tool upstream, with `extra` YAML sections."""
    url = tool_upstream_server[1].url

    def make(extra: str = "") -> RunningServer:
        return start_gateway(upstream_config(url, extra))

    return make


@pytest.fixture
def responses_gateway(make_responses_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_responses_gateway("")
