"""Secrets stay secret: client credentials never go upstream, and no provider key or
client key shows up in a log line, error body, metric or response header, whatever fails."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from tests.hardening import rawserver as raw
from tests.hardening.harness import (
    CHAT,
    MESSAGES,
    UPSTREAM_KEY,
    capture_logs,
    gateway_yaml,
    no_breakers,
    running_gateway,
    shared_client,
    single_attempt,
    wait_until,
)

CLIENT_SECRETS = {
    "authorization": "Bearer sk-client-bearer-7f3a9c",
    "x-api-key": "sk-client-xapikey-51be02",
    "api-key": "sk-client-azurekey-9d8e7f",
    "proxy-authorization": "Basic Y2xpZW50OnNlY3JldA==",
    "cookie": "session=client-cookie-4c4c4c",
}
SECRETS = [UPSTREAM_KEY, *(v.split(" ")[-1] for v in CLIENT_SECRETS.values())]
LEAKY_ERROR = orjson.dumps(
    {"error": {"message": f"Incorrect API key provided: {UPSTREAM_KEY}", "code": "invalid_key"}}
)


@pytest.mark.parametrize(
    ("path", "stream"),
    [
        (CHAT, False),
        (CHAT, True),
        ("/v1/completions", False),
        ("/v1/completions", True),
        ("/v1/embeddings", False),  # embeddings do not stream
    ],
)
def test_client_credentials_are_never_forwarded_upstream(path: str, stream: bool) -> None:
    with (
        raw.raw_upstream(raw.always_ok()) as upstream,
        running_gateway(gateway_yaml(upstream.url)) as gw,
    ):
        body = {
            "model": "up",
            "messages": MESSAGES,
            "prompt": "hi",
            "input": "hi",
            "stream": stream,
        }
        response = shared_client().post(gw.url + path, json=body, headers=CLIENT_SECRETS)
        assert response.status_code == 200
        sent = upstream.requests[-1].headers
        assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"
        for name in ("x-api-key", "api-key", "proxy-authorization", "cookie"):
            assert name not in sent
        wire = str(sent) + upstream.requests[-1].body.decode()
        assert not [s for s in SECRETS[1:] if s in wire]


# Everything that can fail upstream, with the provider's key in the failure where it can be.
FAULTS = [
    raw.json_reply(LEAKY_ERROR, 401),
    raw.json_reply(LEAKY_ERROR, 500),
    raw.json_reply(LEAKY_ERROR, 429, retry_after="1"),
    raw.json_reply(f"key {UPSTREAM_KEY} rejected".encode(), 403),
    raw.json_reply(b"{not json " + UPSTREAM_KEY.encode()),
    raw.json_reply(LEAKY_ERROR, 200, x_leak=UPSTREAM_KEY),
    raw.sse_reply([raw.sse_chunk(0), b"data: " + LEAKY_ERROR + b"\n\n"]),
    raw.sse_reply([raw.sse_chunk(0)], then="stall"),
    raw.sse_reply([raw.sse_chunk(0)], then="truncate"),
    raw.stall_before_headers(),
]


def faults_yaml(upstreams: list[raw.RawUpstream]) -> str:
    """One provider and model alias per fault (f0, f1 …), so that retries or a circuit
    breaker opened by one fault cannot keep the next one from reaching its upstream."""
    timeout = "{connect: 0.5, read: 0.3, write: 1, pool: 1}"
    providers = "".join(
        f"  f{i}: {{kind: openai, base_url: {u.url}/v1, api_key: '${{UPSTREAM_KEY}}', "
        f"timeout: {timeout}}}\n"
        for i, u in enumerate(upstreams)
    )
    models = "".join(
        f"  f{i}: {{deployments: [{{provider: f{i}, model: m{i}}}]{single_attempt()}}}\n"
        for i in range(len(upstreams))
    )
    head = f"logging: {{level: debug}}\n{no_breakers()}"
    return f"{head}providers:\n{providers}models:\n{models}"


@contextmanager
def fault_upstreams() -> Iterator[list[raw.RawUpstream]]:
    with ExitStack() as stack:
        yield [stack.enter_context(raw.raw_upstream(fault)) for fault in FAULTS]


def _fault_run(base_url: str) -> list[str]:
    """Drive every fault through the gateway; return every byte the client saw, as text."""
    seen: list[str] = []
    client = shared_client()
    for i in range(len(FAULTS)):
        for stream in (False, True):
            body = {"model": f"f{i}", "messages": MESSAGES, "stream": stream}
            response = client.post(base_url + CHAT, json=body, headers=CLIENT_SECRETS)
            seen += [str(response.status_code), str(response.headers), response.text]
    for path in ("/metrics", "/ready", "/health", "/v1/models"):
        response = client.get(base_url + path, headers=CLIENT_SECRETS)
        seen += [str(response.headers), response.text]
    return seen


def _leaks(texts: list[str]) -> list[str]:
    return [
        f"{secret!r} in {text[:300]!r}" for text in texts for secret in SECRETS if secret in text
    ]


def test_no_secret_in_logs_errors_metrics_or_headers_during_a_fault_run() -> None:
    with fault_upstreams() as upstreams, capture_logs() as logs:
        with running_gateway(faults_yaml(upstreams)) as gw:
            seen = _fault_run(gw.url)
            seen.append(gw.metrics_text())
            assert wait_until(lambda: gw.metric("gateway_in_flight_requests") == 0)
        assert all(u.requests for u in upstreams)  # every fault reached its upstream
    assert any("Incorrect API key provided: ***" in text for text in seen)  # scrubbed, kept
    assert len(logs.access_lines()) >= 2 * len(FAULTS)
    assert not _leaks(seen + logs.lines)


@contextmanager
def gateway_process(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
    env = {**os.environ, "UPSTREAM_KEY": UPSTREAM_KEY}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def test_no_secret_on_a_real_gateway_process_stderr_during_a_fault_run(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with fault_upstreams() as upstreams:
        config = tmp_path / "gateway.yaml"
        config.write_text(faults_yaml(upstreams))
        with gateway_process(config, port) as proc:
            seen = _fault_run(f"http://127.0.0.1:{port}")
            assert all(u.requests for u in upstreams)  # every fault reached its upstream
        stdout, stderr = proc.communicate(timeout=10)
    output = (stdout + stderr).decode(errors="replace")
    assert output.count('"logger":"gateway.access"') >= 2 * len(FAULTS)
    assert not _leaks([*seen, *output.splitlines()])
