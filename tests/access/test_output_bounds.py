"""Issue 10 items 2 and 3: every field that bounds output is read, and choices multiply it.

Before: `{"max_completion_tokens": 5, "max_tokens": 100000}` passed a 50-token `reject`
cap and the upstream received `max_tokens: 100000`; `n: 100` reserved one choice's tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gateway.auth.keys import hash_key
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

KEY_REJECT = "sk-test-bounds-reject-0123456789"
KEY_CLAMP = "sk-test-bounds-clamp-0123456789"
KEY_OUT = "sk-test-bounds-output-0123456789"
BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
YAML = f"""
auth:
  keys:
    - {{id: reject, hash: "{hash_key(KEY_REJECT)}", caps: {{on_exceed: reject, max_tokens: 50}}}}
    - {{id: clamp, hash: "{hash_key(KEY_CLAMP)}", caps: {{max_tokens: 50}}}}
    - {{id: output, hash: "{hash_key(KEY_OUT)}", caps: {{max_output_tokens: 200, max_choices: 4}}}}
"""


@pytest.fixture
def gateway(make_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_gateway(YAML)


def chat(gateway: RunningServer, key: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={**BODY, **extra},
        headers={"authorization": f"Bearer {key}"},
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"max_completion_tokens": 5, "max_tokens": 100000},
        {"max_completion_tokens": None, "max_tokens": 100000},
        {"max_tokens": 5, "max_completion_tokens": 100000},
        {"max_completion_tokens": 100000},
    ],
    ids=["small-new-big-legacy", "null-new-big-legacy", "small-legacy-big-new", "new-only"],
)
def test_reject_cap_reads_every_bound_field(
    gateway: RunningServer, upstream: FakeUpstream, extra: dict
) -> None:
    reply = chat(gateway, KEY_REJECT, **extra)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "max_tokens_exceeded"
    assert upstream.requests == []


@pytest.mark.parametrize(
    "extra",
    [
        {"max_completion_tokens": 5, "max_tokens": 100000},
        {"max_completion_tokens": None, "max_tokens": 100000},
        {"max_tokens": 7, "max_completion_tokens": 100000},
    ],
    ids=["small-new-big-legacy", "null-new-big-legacy", "small-legacy-big-new"],
)
def test_clamp_bounds_every_field_sent_upstream(
    gateway: RunningServer, upstream: FakeUpstream, extra: dict
) -> None:
    reply = chat(gateway, KEY_CLAMP, **extra)
    assert reply.status_code == 200, reply.text
    sent = upstream.requests[-1]
    for name in ("max_tokens", "max_completion_tokens"):
        value = sent.get(name)
        assert value is None or value <= 50, (name, value)
    assert reply.headers["x-gateway-max-tokens-clamped"] == "100000->50"


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        ({"n": 4, "max_tokens": 50}, 200, None),
        ({"n": 5, "max_tokens": 10}, 400, "too_many_choices"),
        ({"n": 4, "max_tokens": 51}, 400, "max_tokens_exceeded"),
        ({"n": 2}, 400, "max_tokens_required"),
    ],
    ids=["within", "too-many-choices", "bound-times-choices-over", "unbounded"],
)
def test_choices_multiply_the_output_ceiling(
    gateway: RunningServer, upstream: FakeUpstream, extra: dict, status: int, code: str | None
) -> None:
    reply = chat(gateway, KEY_OUT, **extra)
    assert reply.status_code == status, reply.text
    if code is not None:
        assert reply.json()["error"]["code"] == code
        assert upstream.requests == []


def test_default_max_choices_refuses_n_100_without_keys(
    start_gateway: Callable[[str], RunningServer], upstream_server: tuple, upstream: FakeUpstream
) -> None:
    from tests.conftest import upstream_config

    _, server = upstream_server
    gateway = start_gateway(upstream_config(server.url, ""))
    reply = httpx.post(
        f"{gateway.url}/v1/chat/completions", json={**BODY, "n": 100, "max_tokens": 50}
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "too_many_choices"
    assert upstream.requests == []
