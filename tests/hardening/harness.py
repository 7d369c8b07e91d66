"""Shared harness for the hardening tests: a real gateway in a thread, log capture,
error-shape checks. Each test module builds its scenario from these pieces."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.app import create_app
from gateway.config import load_config_text
from gateway.config.schema import GatewayConfig, ModelConfig
from gateway.observability.logging import JSONFormatter
from gateway.runtime import Runtime
from gateway.serve import uvicorn_options
from tests.servers import RunningServer, serve_in_thread

UPSTREAM_KEY = os.environ.setdefault("UPSTREAM_KEY", "sk-upstream-secret-123456")
MESSAGES = [{"role": "user", "content": "Say hello"}]
CHAT = "/v1/chat/completions"


def single_attempt() -> str:
    """YAML flow-mapping entries that make one model try its upstream once, with no
    breaker, when this checkout's schema has those features (issue 5 adds them): fault
    tests then see the fault itself, not the retry policy. Empty when it has not."""
    return ", retry: {attempts: 1}" if "retry" in ModelConfig.model_fields else ""


def no_breakers() -> str:
    return "breakers: {enabled: false}\n" if "breakers" in GatewayConfig.model_fields else ""


def gateway_yaml(
    upstream_url: str, *, read: float = 0.5, connect: float = 0.5, extra: str = ""
) -> str:
    """Model `up` -> the given OpenAI-compatible upstream; `mock-small` -> the mock."""
    once = single_attempt()
    return f"""
server: {{max_body_bytes: 65536}}
logging: {{level: debug}}
{no_breakers()}
providers:
  up:
    kind: openai
    base_url: {upstream_url}/v1
    api_key: ${{UPSTREAM_KEY}}
    timeout: {{connect: {connect}, read: {read}, write: 1, pool: 1}}
    max_connections: 500  # 200-client tests must not queue for the pool
  mock:
    kind: mock
    mock: {{chunks: 4}}
models:
  up: {{deployments: [{{provider: up, model: upstream-model}}]{once}}}
  mock-small: {{deployments: [{{provider: mock, model: mock-small}}]{once}}}
{extra}
"""


@dataclass
class Gateway:
    """A gateway app served by uvicorn in a thread (its own event loop)."""

    server: RunningServer
    runtime: Runtime

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.server.server.servers[0].get_loop()

    def run(self, coro: Any, timeout: float = 5.0) -> Any:
        """Run a coroutine on the gateway's own loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def task_count(self) -> int:
        async def count() -> int:
            return len(asyncio.all_tasks()) - 1  # minus this one

        return int(self.run(count()))

    def metrics_text(self) -> str:
        return shared_client().get(f"{self.url}/metrics").text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for metric in self.runtime.metrics.registry.collect():
            for sample in metric.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total


@contextlib.contextmanager
def running_gateway(yaml_text: str, *, as_served: bool = False) -> Iterator[Gateway]:
    """The gateway in a thread: on plain uvicorn, or (`as_served`) with the options of
    `gateway serve` (the guarded protocol and its lean per-connection objects)."""
    config = load_config_text(yaml_text)
    app = create_app(config)
    options = uvicorn_options(config) if as_served else {}
    with serve_in_thread(app, **options) as server:
        yield Gateway(server, app.state.runtime)


@dataclass
class CapturedLogs(logging.Handler):
    """Every record any logger emits, formatted as the gateway's JSON log lines."""

    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.DEBUG)
        self.setFormatter(JSONFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def __hash__(self) -> int:
        return id(self)

    def access_lines(self) -> list[str]:
        return [line for line in self.lines if '"logger":"gateway.access"' in line]


@contextlib.contextmanager
def capture_logs() -> Iterator[CapturedLogs]:
    root = logging.getLogger()
    handler = CapturedLogs()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


ERROR_TYPES = re.compile(r"[a-z_]+")


def assert_openai_error(response: httpx.Response, status: int | tuple[int, ...]) -> dict:
    """The response has the expected status and OpenAI's error body; returns the error."""
    expected = status if isinstance(status, tuple) else (status,)
    assert response.status_code in expected, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert ERROR_TYPES.fullmatch(error["type"])
    return error


def sse_lines(response: httpx.Response) -> list[str]:
    return [line for line in response.iter_lines() if line]


@functools.cache
def shared_client() -> httpx.Client:
    """One client for quick checks (a new httpx client costs ~100 ms of TLS set-up)."""
    return httpx.Client(timeout=5)


def still_serves(gateway_url: str) -> None:
    """A valid request after the abuse still gets a full answer."""
    body = {"model": "mock-small", "messages": MESSAGES}
    response = shared_client().post(gateway_url + CHAT, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Say hello"


def busy_upstream_connections(gateway: Gateway, provider: str = "up") -> int:
    """Upstream connections the provider holds in use (not idle in its pool, not closed)."""
    assert gateway.runtime.services is not None
    adapter = gateway.runtime.services.providers[provider]
    return adapter._client.connections_in_use()  # type: ignore[attr-defined]


def wait_until(predicate: Any, timeout: float = 2.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@contextlib.contextmanager
def gateway_before(scenario: Any, **options: Any) -> Iterator[tuple[Any, Gateway]]:
    """A raw upstream playing `scenario` and a gateway in front of it (`gateway_yaml`)."""
    from tests.hardening.rawserver import raw_upstream

    with (
        raw_upstream(scenario) as upstream,
        running_gateway(gateway_yaml(upstream.url, **options)) as gateway,
    ):
        yield upstream, gateway
