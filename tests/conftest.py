from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from gateway.app import create_app
from gateway.config import load_config_text
from tests.servers import RunningServer, serve_in_thread
from tests.upstream import FakeUpstream

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("UPSTREAM_KEY", "sk-upstream-secret-123456")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[tuple[FakeUpstream, RunningServer]]:
    fake = FakeUpstream()
    with serve_in_thread(fake.app()) as server:
        yield fake, server


@pytest.fixture
def upstream(upstream_server: tuple[FakeUpstream, RunningServer]) -> FakeUpstream:
    fake, _ = upstream_server
    fake.reset()
    return fake


def upstream_config(upstream_url: str, extra: str = "") -> str:
    return f"""
providers:
  up:
    kind: openai
    base_url: {upstream_url}/v1
    api_key: ${{UPSTREAM_KEY}}
    timeout: {{connect: 1, read: 2}}
  mock:
    kind: mock
models:
  gpt-test:
    deployments:
      - {{provider: up, model: upstream-model}}
  mock-small:
    deployments:
      - {{provider: mock, model: mock-small}}
{extra}
"""


@pytest.fixture
def start_gateway() -> Iterator[Callable[[str], RunningServer]]:
    """Start a real gateway (uvicorn on 127.0.0.1) from YAML text."""
    with ExitStack() as stack:

        def start(yaml_text: str) -> RunningServer:
            app = create_app(load_config_text(yaml_text))
            return stack.enter_context(serve_in_thread(app))

        yield start


@pytest.fixture
def gateway(
    start_gateway: Callable[[str], RunningServer],
    upstream_server: tuple[FakeUpstream, RunningServer],
    upstream: FakeUpstream,
) -> RunningServer:
    _, server = upstream_server
    return start_gateway(upstream_config(server.url))
