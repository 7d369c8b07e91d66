"""Shared fixtures, and what the suite needs from the machine.

Redis (REDIS_URL, default redis://127.0.0.1:6379/0): tests that use it skip, with one line
saying how to start it; with GATEWAY_REQUIRE_REDIS=1 (CI) the run stops at once instead.
promtool: its tests skip without it; with GATEWAY_REQUIRE_PROMTOOL=1 the run stops at once.
The image tests need Docker; GATEWAY_SKIP_IMAGE=1 skips them (tests/test_image.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import cache

import pytest
import redis

from gateway.app import create_app
from gateway.config import load_config_text
from tests.servers import RunningServer, serve_in_thread
from tests.upstream import FakeUpstream

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("UPSTREAM_KEY", "sk-upstream-secret-123456")


REDIS_HINT = "start it with `redis-server --daemonize yes --save ''` or run .ci/run"
PROMTOOL_HINT = "install it with `apt-get install prometheus` (Debian) or run .ci/run"


def configured_redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@cache
def redis_problem(url: str) -> str | None:
    """None when Redis answers at `url`, else one line saying what is wrong and what to do."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {url} ({type(exc).__name__}): {REDIS_HINT}"
    finally:
        client.close()
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("GATEWAY_REQUIRE_REDIS") == "1":
        problem = redis_problem(configured_redis_url())
        if problem:
            pytest.exit(f"GATEWAY_REQUIRE_REDIS=1: {problem}", returncode=1)
    if os.environ.get("GATEWAY_REQUIRE_PROMTOOL") == "1" and not shutil.which("promtool"):
        pytest.exit(f"GATEWAY_REQUIRE_PROMTOOL=1: promtool is missing; {PROMTOOL_HINT}", 1)


def pytest_report_header(config: pytest.Config) -> list[str]:
    redis_state = redis_problem(configured_redis_url()) or f"ok at {configured_redis_url()}"
    promtool = "ok" if shutil.which("promtool") else f"missing, its tests skip ({PROMTOOL_HINT})"
    return [f"redis: {redis_state}", f"promtool: {promtool}"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis; skips the test (outside CI) with how to start it when it is down."""
    url = configured_redis_url()
    problem = redis_problem(url)
    if problem:
        pytest.skip(problem)
    return url


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


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A real PostgreSQL with pgvector (the `pgserver` package), in a temporary folder; one
    per run, shared by the vector store's tests (tests/cache) and the stage's (tests/pipeline)."""
    import pgserver

    with tempfile.TemporaryDirectory(prefix="gw-pg-") as folder:
        server = pgserver.get_server(folder, cleanup_mode="stop")
        try:
            server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
            yield server.get_uri()
        finally:
            server.cleanup()
