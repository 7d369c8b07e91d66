"""What observe writes: a refused request (401/403/429) is counted under the model alias it
asked for when that alias is configured, else `unknown` (clients cannot mint series); the
access log's overhead_ms is a number equal to the x-gateway-overhead-ms header; no log line
carries an object repr (litellm stamps its records with a bare object())."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx
import orjson
import pytest

from gateway.observability.logging import JSONFormatter
from tests.access.conftest import KEY_A, KEYS_YAML
from tests.conftest import upstream_config
from tests.observability.test_metrics import samples, value
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

LIMIT = "limits: {default_key: {requests: ['1/minute']}}\n"


def chat(url: str, model: str, key: str | None) -> int:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers).status_code


def test_refused_requests_are_counted_under_the_configured_alias_they_asked_for(
    start_gateway: Callable[[str], RunningServer],
    upstream_server: tuple[FakeUpstream, RunningServer],
    upstream: FakeUpstream,
) -> None:
    gateway = start_gateway(upstream_config(upstream_server[1].url, "auth:" + KEYS_YAML + LIMIT))
    calls = [
        ("gpt-test", None, 401),  # no key
        ("mock-small", KEY_A, 403),  # team-a may use gpt-test only
        ("gpt-test", KEY_A, 200),
        ("gpt-test", KEY_A, 429),  # 1/minute
        ("made-up-model-1", None, 401),  # not configured: never a label
        ("made-up-model-2", KEY_A, 403),
    ]
    assert [chat(gateway.url, model, key) for model, key, _ in calls] == [c[2] for c in calls]
    found = samples(httpx.get(f"{gateway.url}/metrics").text)
    counted = {
        (labels["model"], labels["status_class"]): count
        for labels, count in found["gateway_requests_total"]
    }
    assert counted == {
        ("gpt-test", "4xx"): 2,
        ("mock-small", "4xx"): 1,
        ("gpt-test", "2xx"): 1,
        ("unknown", "4xx"): 2,
    }
    assert value(found, "gateway_requests_total", model="made-up-model-1") == 0


def test_access_log_overhead_is_the_header_as_a_number(
    gateway: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        reply = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert reply.status_code == 200
    for _ in range(100):  # the line is written when the reply completes, just after sending
        written = [r for r in caplog.records if r.name == "gateway.access"]
        if written:
            break
        time.sleep(0.05)
    record = written[0]
    overhead = record.__dict__["overhead_ms"]
    assert isinstance(overhead, float)
    assert f"{overhead:.2f}" == reply.headers["x-gateway-overhead-ms"]


def access_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[logging.LogRecord]:
    for _ in range(100):  # each line is written when its reply completes, just after sending
        written = [r for r in caplog.records if r.name == "gateway.access"]
        if len(written) >= count:
            return written
        time.sleep(0.05)
    raise AssertionError(f"{len(written)} access-log lines, not {count}")


def test_the_access_log_names_the_key_by_its_id_and_never_the_key(
    start_gateway: Callable[[str], RunningServer],
    upstream_server: tuple[FakeUpstream, RunningServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = start_gateway(upstream_config(upstream_server[1].url, "auth:" + KEYS_YAML))
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        assert chat(gateway.url, "gpt-test", KEY_A) == 200
        assert chat(gateway.url, "gpt-test", None) == 401
        served, refused = access_lines(caplog, 2)
    assert served.__dict__["key_id"] == "team-a" and served.__dict__["status"] == 200
    assert "key_id" not in refused.__dict__ and refused.__dict__["status"] == 401
    assert not any(KEY_A in str(value) for value in served.__dict__.values())


class Handle:
    pass


def test_log_lines_carry_no_object_reprs() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "client %s",
            "args": (Handle(),),
            "litellm_redacted": object(),  # as litellm's logging stamps its records
            "nested": {"handle": Handle(), "n": 1},
            "kept": "text",
        }
    )
    line = JSONFormatter().format(record)
    assert "object at 0x" not in line
    entry = orjson.loads(line)
    assert "litellm_redacted" not in entry
    assert entry["msg"] == "client <tests.pipeline.test_observe_fields.Handle>"
    assert entry["nested"] == {"handle": "<tests.pipeline.test_observe_fields.Handle>", "n": 1}
    assert entry["kept"] == "text"
