"""Redis stopped and restarted under load: no 5xx (limits fail open by default, the cache
misses), /ready says degraded while it is gone, and the same gateway recovers on its own."""

from __future__ import annotations

import collections
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.config.schema import GatewayConfig
from tests.hardening.harness import CHAT, gateway_yaml, running_gateway, wait_until

REDIS = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    assert REDIS, "redis-server is required for this test"
    argv = [REDIS, "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        yield proc
    finally:
        proc.terminate()
        proc.wait(5)


def redis_yaml(port: int, on_error: str) -> str:
    extra = f"state: {{backend: redis, redis_url: 'redis://127.0.0.1:{port}/0'}}\n"
    if "limits" in GatewayConfig.model_fields:
        extra += f"limits: {{on_backend_error: {on_error}, ip: {{requests: ['100000/minute']}}}}\n"
    if "cache" in GatewayConfig.model_fields:
        extra += "cache: {enabled: true}\n"
    return gateway_yaml("http://127.0.0.1:9", extra=extra)


class Load:
    """Requests in a background thread: stream and not, repeated prompts (cache hits)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.phase = "before"
        self.statuses: dict[str, collections.Counter[int]] = collections.defaultdict(
            collections.Counter
        )
        self.bad: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        i = 0
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                i += 1
                content = f"question {i % 5}"
                body = {
                    "model": "mock-small",
                    "messages": [{"role": "user", "content": content}],
                    "stream": i % 3 == 0,
                }
                phase = self.phase  # when the request was sent, not when it was answered
                response = client.post(self.url + CHAT, json=body)
                self.statuses[phase][response.status_code] += 1
                planned = response.status_code == 503 and _is_openai_error(response)
                if response.status_code >= 500 and not planned and len(self.bad) < 5:
                    self.bad.append(f"{phase}: {response.status_code} {response.text[:200]}")

    def wait(self, phase: str, count: int = 20) -> None:
        assert wait_until(lambda: sum(self.statuses[phase].values()) >= count, 10), phase


def _is_openai_error(response: httpx.Response) -> bool:
    try:
        return set(response.json()["error"]) == {"message", "type", "param", "code"}
    except (ValueError, KeyError, TypeError):
        return False


def probe(url: str) -> int:
    body = {"model": "mock-small", "messages": [{"role": "user", "content": "probe"}]}
    return httpx.post(url + CHAT, json=body, timeout=5).status_code


def ready(url: str) -> tuple[int, dict]:
    response = httpx.get(url + "/ready", timeout=5)
    return response.status_code, response.json()


@pytest.mark.skipif(REDIS is None, reason="redis-server not installed")
def test_redis_stop_and_restart_under_load_gives_no_5xx_and_recovers() -> None:
    port = free_port()
    with redis_server(port) as first, running_gateway(redis_yaml(port, "open")) as gw:
        with Load(gw.url) as load:
            load.wait("before")
            assert ready(gw.url)[1]["status"] == "ready"

            load.phase = "down"
            first.terminate()
            first.wait(5)
            outage_started = time.monotonic()
            load.wait("down", 40)
            degraded = ready(gw.url)
            assert degraded[1]["status"] == "degraded", degraded

            with redis_server(port):
                load.phase = "restarted"
                back = wait_until(lambda: ready(gw.url)[1]["status"] == "ready", 15)
                recovered_in = time.monotonic() - outage_started
                load.wait("restarted", 40)
        print(
            f"\nRedis outage: {dict(load.statuses['down'])} during, "
            f"{dict(load.statuses['restarted'])} after restart; /ready back after "
            f"{recovered_in:.1f} s from the stop"
        )
        assert back, ready(gw.url)
        assert not load.bad, load.bad
        assert 503 not in load.statuses["down"]  # limits fail open by default
        for phase in ("before", "down", "restarted"):
            assert set(load.statuses[phase]) == {200}, (phase, load.statuses[phase])


@pytest.mark.skipif(REDIS is None, reason="redis-server not installed")
def test_redis_that_hangs_costs_bounded_latency_and_no_5xx() -> None:
    """SIGSTOP: the socket stays open but nothing answers (a partition, not a refusal)."""
    port = free_port()
    with redis_server(port) as frozen, running_gateway(redis_yaml(port, "open")) as gw:
        with Load(gw.url) as load:
            load.wait("before")
            load.phase = "hung"
            frozen.send_signal(19)  # SIGSTOP
            try:
                started = time.monotonic()
                load.wait("hung", 3)
                slowest_seconds = (time.monotonic() - started) / 3
            finally:
                frozen.send_signal(18)  # SIGCONT
            load.phase = "resumed"
            load.wait("resumed", 20)
        print(f"\nRedis hung: {dict(load.statuses['hung'])}, ~{slowest_seconds:.2f} s per request")
        assert not load.bad, load.bad
        assert set(load.statuses["hung"]) <= {200}
        assert set(load.statuses["resumed"]) == {200}
        assert slowest_seconds < 5  # Redis timeouts bound the wait (socket_timeout ~1 s)


@pytest.mark.skipif(REDIS is None, reason="redis-server not installed")
@pytest.mark.skipif("limits" not in GatewayConfig.model_fields, reason="no limits yet")
def test_limits_configured_to_fail_closed_refuse_with_503_then_recover() -> None:
    """Closed: refusals while Redis is gone are 503s in OpenAI's format, never a 500, and
    once the limiter serves from Redis again no request is refused. (The 503s once seen
    after recovery came from this test stopping Redis while its load still ran: the load
    now counts that as its own phase.)"""
    port = free_port()
    with redis_server(port) as first, running_gateway(redis_yaml(port, "closed")) as gw:
        with Load(gw.url) as load:
            load.wait("before")
            load.phase = "down"
            first.terminate()
            first.wait(5)
            load.wait("down", 20)
            with redis_server(port):
                load.phase = "restarted"
                restarted = time.monotonic()
                assert wait_until(lambda: ready(gw.url)[1]["status"] == "ready", 15)
                assert wait_until(lambda: probe(gw.url) == 200, 15)
                limits_back = time.monotonic() - restarted
                load.phase = "recovered"
                load.wait("recovered", 100)
                load.phase = "stopping"  # Redis stops next, under the same load
        print(
            f"\nRedis down, limits closed: {dict(load.statuses['down'])}; after restart "
            f"{dict(load.statuses['restarted'])}, then {dict(load.statuses['recovered'])}; "
            f"limits serving again after {limits_back:.1f} s"
        )
        assert not load.bad, load.bad  # no 5xx but the planned 503
        assert set(load.statuses["before"]) == {200}
        assert 503 in load.statuses["down"]
        recovered = load.statuses["recovered"]
        assert dict(recovered) == {200: sum(recovered.values())}, recovered
