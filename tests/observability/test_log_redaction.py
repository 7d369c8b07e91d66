"""Logs never carry a secret: configured keys, bearer tokens and key-shaped strings are
masked by the JSON formatter; prompt text appears only when logging.log_prompts is on."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import orjson
import pytest

from gateway.config import load_config_text
from gateway.observability.logging import JSONFormatter, update_log_settings
from gateway.observability.redaction import MASK, Redactor
from tests.conftest import upstream_config
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

CONFIG_SECRETS = {
    "UPSTREAM_KEY": "sk-upstream-secret-123456",
    "GW_METRICS_TOKEN": "metrics-token-abcdef",
    "GW_ADMIN_KEY": "admin-key-0a1b2c3d",
}
CLIENT_BEARER = "client-bearer-9f8e7d6c"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("key is sk-proj-AbCdEf1234567890", "sk-proj-AbCdEf1234567890"),
        ("Authorization: Bearer tok_123456789", "tok_123456789"),
        ("url https://x/v1?api_key=zzz999yyy", "zzz999yyy"),
        ("configured value my-config-secret here", "my-config-secret"),
    ],
)
def test_redactor_masks_secret_shapes_and_configured_values(text: str, leak: str) -> None:
    masked = Redactor(["my-config-secret"]).text(text)
    assert leak not in masked and MASK in masked


def test_formatter_masks_fields_by_name_and_nested_values() -> None:
    formatter = JSONFormatter(Redactor(["s3cret-value"]))
    record = logging.makeLogRecord(
        {
            "msg": "failed with s3cret-value",
            "authorization": "Basic abc",
            "headers": {"x-api-key": "anything", "note": ["Bearer abcdefgh"]},
        }
    )
    line = orjson.loads(formatter.format(record))
    assert line["msg"] == f"failed with {MASK}"
    assert line["authorization"] == MASK
    assert line["headers"] == {"x-api-key": MASK, "note": [f"Bearer {MASK}"]}


@contextmanager
def captured_json_logs(config_text: str) -> Iterator[io.StringIO]:
    """The root logger as `gateway serve` sets it up (JSON, redacting), into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = [handler]
    update_log_settings(load_config_text(config_text))
    try:
        yield stream
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


@pytest.mark.parametrize("log_prompts", [True, False])
def test_no_config_or_header_secret_in_logs_across_a_fault_run(
    monkeypatch: pytest.MonkeyPatch,
    start_gateway: Callable[[str], RunningServer],
    upstream_server: tuple[FakeUpstream, RunningServer],
    upstream: FakeUpstream,
    log_prompts: bool,
) -> None:
    for name, secret in CONFIG_SECRETS.items():
        monkeypatch.setenv(name, secret)
    extra = (
        f"logging: {{level: debug, log_prompts: {str(log_prompts).lower()}}}\n"
        "metrics: {token: '${GW_METRICS_TOKEN}'}\n"
    )
    text = upstream_config(upstream_server[1].url, extra)
    prompt = f"my key is {CONFIG_SECRETS['UPSTREAM_KEY']} and the visible words"
    headers = {"authorization": f"Bearer {CLIENT_BEARER}", "x-api-key": CLIENT_BEARER}
    with captured_json_logs(text) as logs:
        gateway = start_gateway(text)
        for behaviour in ({}, {"status": 500}, {"status": 401}, {"cut_after": 1}):
            upstream.reset(error_message=f"bad key {CONFIG_SECRETS['UPSTREAM_KEY']}", **behaviour)
            for stream in (False, True):
                body = {
                    "model": "gpt-test",
                    "stream": stream,
                    "messages": [{"role": "user", "content": prompt}],
                }
                httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers)
        httpx.get(f"{gateway.url}/metrics", headers=headers)  # wrong token: refused, logged?
        logging.getLogger("gateway").error("oops %s", CONFIG_SECRETS["GW_ADMIN_KEY"])
    output = logs.getvalue()
    assert output.count('"logger":"gateway.access"') >= 8
    leaks = [s for s in [*CONFIG_SECRETS.values(), CLIENT_BEARER] if s in output]
    assert leaks == []
    assert ("the visible words" in output) is log_prompts


def test_secret_shaped_values_a_client_sends_are_masked_in_the_access_log(
    start_gateway: Callable[[str], RunningServer],
    upstream_server: tuple[FakeUpstream, RunningServer],
) -> None:
    """The access line's strings a client chooses (the model it names, its request id)
    go through the same redaction as every field: a key pasted there is not written out."""
    text = upstream_config(upstream_server[1].url, "logging: {level: info}\n")
    pasted = "sk-proj-PastedKey0123456789"
    with captured_json_logs(text) as logs:
        gateway = start_gateway(text)
        for model, request_id in ((pasted, "plain-id-1"), ("gpt-test", pasted)):
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            headers = {"x-request-id": request_id}
            httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers)
        # A request's line is written when its reply completes, just after the client has
        # it: wait for both, as tests/pipeline/test_observe_fields.py does.
        for _ in range(100):
            if logs.getvalue().count('"logger":"gateway.access"') >= 2:
                break
            time.sleep(0.05)
    lines = [orjson.loads(line) for line in logs.getvalue().splitlines() if line.strip()]
    access = [line for line in lines if line.get("logger") == "gateway.access"]
    assert len(access) == 2
    assert pasted not in logs.getvalue()
    assert access[0]["model"] == MASK and access[0]["status"] == 404
