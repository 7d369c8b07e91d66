"""The real image: built from the Dockerfile, run with --network host, and checked from
outside as an operator would: /health, a chat completion plain and streamed through the
openai SDK, the non-root user, the HEALTHCHECK, the gunicorn workers' merged /metrics, a
clean SIGTERM drain with a stream open, and every extra present (`gateway check` passes a
config using each one).

Needs a Docker daemon (CI: .ci/run starts one). The base is $GATEWAY_IMAGE_BASE, else the
official python:3.11-slim-bookworm when present, else a local one made by
scripts/make_base_image.sh (no registry needed). Skip only on request:
GATEWAY_SKIP_IMAGE=1 (or `-m "not image"`).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway_process import free_port
from tests.observability.test_metrics import samples, value

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "gateway:test"
OFFICIAL_BASE = "python:3.11-slim-bookworm"
LOCAL_BASE = "gateway-base:bookworm"
CONFIG = """
server: {shutdown_grace_seconds: 20}
providers:
  mock: {kind: mock, mock: {chunks: 4}}
  slow: {kind: mock, mock: {chunks: 8, chunk_delay_ms: 400}}
models:
  mock-small:
    deployments: [{provider: mock, model: mock-small}]
  mock-slow:
    deployments: [{provider: slow, model: mock-slow}]
"""
EVERY_EXTRA = (
    CONFIG
    + """
  claude:
    deployments: [{provider: ant, model: claude-x}]
cache: {enabled: true, semantic: {enabled: true}}
tracing: {enabled: true, exporter: console}
routes:
  auto:
    default: mock-small
    classifier: {tiers: {easy: {target: mock-small, examples: [hello]}}}
"""
).replace("providers:\n", "providers:\n  ant: {kind: litellm, litellm_provider: anthropic}\n")

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]


def docker(*args: str, check: bool = True, timeout: float = 600) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {args[0]} failed: {result.stdout}{result.stderr}")
    return result.stdout.strip()


def base_image() -> str:
    if os.environ.get("GATEWAY_IMAGE_BASE"):
        return os.environ["GATEWAY_IMAGE_BASE"]
    present = subprocess.run(["docker", "image", "inspect", OFFICIAL_BASE], capture_output=True)
    if present.returncode == 0:
        return OFFICIAL_BASE
    script = ROOT / "scripts" / "make_base_image.sh"
    result = subprocess.run([str(script), LOCAL_BASE], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return LOCAL_BASE


@pytest.fixture(scope="module")
def image() -> str:
    if os.environ.get("GATEWAY_SKIP_IMAGE") == "1":
        pytest.skip("GATEWAY_SKIP_IMAGE=1: the image tests were asked to be skipped")
    try:
        reachable = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    except FileNotFoundError:
        reachable = None
    if reachable is None or reachable.returncode != 0:
        pytest.fail(
            "the image tests need a Docker daemon: apt-get install docker.io && dockerd &"
            " (or skip them with GATEWAY_SKIP_IMAGE=1)",
            pytrace=False,
        )
    base = base_image()
    docker("build", "--network", "host", "--build-arg", f"BASE={base}", "-t", IMAGE, str(ROOT))
    return IMAGE


class Container:
    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"

    def logs(self) -> str:
        return docker("logs", self.name, check=False, timeout=30)


@pytest.fixture
def container(image: str, tmp_path: Path) -> Iterator[Container]:
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    config.chmod(0o644)
    port = free_port()
    name = f"gateway-test-{uuid.uuid4().hex[:8]}"
    docker(
        "run", "-d", "--name", name, "--network", "host", "-e", f"PORT={port}",
        "-e", "GATEWAY_GRACE_SECONDS=20",
        "-v", f"{config}:/etc/gateway/gateway.yaml:ro", image,
    )  # fmt: skip
    running = Container(name, port)
    try:
        wait_ready(running)
        yield running
    finally:
        docker("rm", "-f", name, check=False, timeout=60)


def wait_ready(container: Container) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{container.url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the container never became ready:\n{container.logs()}")


def test_serves_health_and_chat_plain_and_streamed_as_non_root(container: Container) -> None:
    assert httpx.get(f"{container.url}/health").status_code == 200
    client = openai.OpenAI(base_url=f"{container.url}/v1", api_key="k", max_retries=0)
    reply = client.chat.completions.create(
        model="mock-small", messages=[{"role": "user", "content": "ping pong"}]
    )
    assert reply.choices[0].message.content == "ping pong"
    stream = client.chat.completions.create(
        model="mock-small", messages=[{"role": "user", "content": "a b c d"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "a b c d"
    status = docker("exec", container.name, "cat", "/proc/1/status")
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == ["10001"] * 4  # real, effective, saved, filesystem
    assert "gunicorn" in docker("exec", container.name, "cat", "/proc/1/cmdline")


def test_healthcheck_reports_healthy(container: Container) -> None:
    deadline = time.monotonic() + 60
    health = ""
    while time.monotonic() < deadline:
        health = docker("inspect", "--format", "{{.State.Health.Status}}", container.name)
        if health == "healthy":
            return
        time.sleep(1)
    raise AssertionError(f"HEALTHCHECK says {health!r}")


def test_workers_metrics_are_merged(container: Container) -> None:
    client = openai.OpenAI(base_url=f"{container.url}/v1", api_key="k", max_retries=0)
    for _ in range(6):
        client.chat.completions.create(
            model="mock-small", messages=[{"role": "user", "content": "x"}]
        )
    for _ in range(4):  # a new connection each: either worker answers, both must agree
        text = httpx.get(f"{container.url}/metrics", headers={"connection": "close"}).text
        assert value(samples(text), "gateway_requests_total", model="mock-small") == 6


def test_sigterm_drains_an_open_stream_and_exits_cleanly(container: Container) -> None:
    body = {"model": "mock-slow", "messages": [{"role": "user", "content": "1 2 3 4 5 6 7 8"}]}
    chunks: list[str] = []
    with httpx.stream(
        "POST", f"{container.url}/v1/chat/completions", json={**body, "stream": True}, timeout=30
    ) as reply:
        lines = reply.iter_lines()
        chunks.append(next(line for line in lines if line.startswith("data:")))
        stopper = threading.Thread(target=docker, args=("stop", "-t", "30", container.name))
        stopper.start()
        chunks.extend(line for line in lines if line.startswith("data:"))
    stopper.join(timeout=60)
    assert chunks[-1] == "data: [DONE]", chunks
    assert docker("inspect", "--format", "{{.State.ExitCode}}", container.name) == "0"
    assert "Traceback" not in container.logs()


def test_image_has_every_extra(image: str, tmp_path: Path) -> None:
    config = tmp_path / "every.yaml"
    config.write_text(EVERY_EXTRA)
    config.chmod(0o644)
    out = docker(
        "run", "--rm", "-v", f"{config}:/tmp/every.yaml:ro", image,
        "gateway", "check", "/tmp/every.yaml",
    )  # fmt: skip
    assert "ok" in out
