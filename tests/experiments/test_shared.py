"""Two gateway processes sharing Redis: a user sees one variant on both, counters and
feedback add up across them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cli import main
from gateway.state.write_batch import BATCH_SECONDS
from tests.redis_keys import drop_prefix, unique_prefix

CONFIG = """
state: {{backend: redis, redis_url: '{redis_url}', key_prefix: '{prefix}'}}
logging: {{access_log: false}}
providers:
  mock: {{kind: mock}}
models:
  fast: {{deployments: [{{provider: mock, model: fast-1}}]}}
  smart: {{deployments: [{{provider: mock, model: smart-1}}]}}
experiments:
  split:
    applies_to: fast
    variants:
      a: {{target: fast}}
      b: {{target: smart}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the gateway process exited"
        try:
            if httpx.get(f"{url}/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(url)


@dataclass
class Instances:
    urls: list[str]
    config: Path


@pytest.fixture(scope="module")
def instances(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instances]:
    prefix = unique_prefix()
    path = Path(tmp_path_factory.mktemp("shared")) / "gateway.yaml"
    path.write_text(CONFIG.format(redis_url=redis_url, prefix=prefix))
    processes, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            command = [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "-c",
                str(path),
                "--port",
                str(port),
            ]
            processes.append(
                subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL)
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_ready(url, process)
        yield Instances(urls, path)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)
        drop_prefix(redis_url, prefix)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:  # one client: a new one per call costs ~0.2 s
        yield client


def chat(http: httpx.Client, url: str, user: str, request_id: str) -> httpx.Response:
    body = {"model": "fast", "user": user, "messages": [{"role": "user", "content": "hi"}]}
    return http.post(f"{url}/v1/chat/completions", json=body, headers={"x-request-id": request_id})


def test_user_sticks_to_one_variant_across_instances(
    instances: Instances, http: httpx.Client
) -> None:
    seen: dict[str, set[str]] = {}
    for i in range(40):
        user = f"user-{i}"
        for n, url in enumerate(instances.urls):
            answer = chat(http, url, user, f"sticky-{i}-{n}")
            seen.setdefault(user, set()).add(answer.headers["x-gateway-experiment"])
    assert all(len(variants) == 1 for variants in seen.values())
    assert {v for vs in seen.values() for v in vs} == {"split=a", "split=b"}


def test_counters_and_feedback_add_up_across_instances(
    instances: Instances, http: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = instances.urls
    before = settled_report(instances, capsys)
    answer = chat(http, first, "feedback-user", "shared-req-1")
    variant = answer.headers["x-gateway-experiment"].split("=")[1]
    chat(http, second, "feedback-user", "shared-req-2")
    linked = http.post(
        f"{second}/v1/feedback", json={"request_id": "shared-req-1", "outcome": "accepted"}
    )
    assert linked.status_code == 200 and linked.json()["variant"] == variant
    deadline = time.monotonic() + 3  # counters are added when each reply completes
    while True:
        after = report(instances, capsys)
        grew = after[variant]["requests"] - before[variant]["requests"]
        if grew == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert grew == 2
    accepted = after[variant]["feedback"]["accepted"] - before[variant]["feedback"]["accepted"]
    assert accepted == 1


def settled_report(instances: Instances, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The report once every instance's batched counters of earlier requests have landed
    (each writes its batch within a few ms): two reads a batch interval apart agree."""
    last = report(instances, capsys)
    for _ in range(40):
        time.sleep(BATCH_SECONDS * 2)
        now = report(instances, capsys)
        if now == last:
            return now
        last = now
    return last


def report(instances: Instances, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Read straight from Redis, as `gateway experiments report` does without --url."""
    capsys.readouterr()
    assert main(["experiments", "report", "split", "-c", str(instances.config), "--json"]) == 0
    return {v["variant"]: v for v in json.loads(capsys.readouterr().out)["variants"]}
