"""No request can choose the upstream URL or reach a host that is not in the config:
model names, paths, Host and forwarding headers, and body fields that name URLs or keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hardening import rawserver as raw
from tests.hardening.clients import exchange, raw_post
from tests.hardening.harness import (
    CHAT,
    MESSAGES,
    UPSTREAM_KEY,
    Gateway,
    gateway_yaml,
    running_gateway,
    shared_client,
    single_attempt,
)


@pytest.fixture(scope="module")
def evil() -> Iterator[raw.RawUpstream]:
    """A host no config names: nothing may ever connect to it."""
    with raw.raw_upstream(raw.always_ok()) as server:
        yield server


@pytest.fixture(scope="module")
def good() -> Iterator[raw.RawUpstream]:
    with raw.raw_upstream(raw.always_ok()) as server:
        yield server


@pytest.fixture(scope="module")
def gw(good: raw.RawUpstream) -> Iterator[Gateway]:
    with running_gateway(gateway_yaml(good.url)) as gateway:
        yield gateway


def model_names(evil_url: str) -> list[str]:
    return [
        f"{evil_url}/v1",
        f"{evil_url}/v1/chat/completions",
        "../up",
        "up/../../evil",
        "//127.0.0.1/up",
        "up?base_url=" + evil_url,
        "up#" + evil_url,
        "up\r\nhost: evil",
        "openai/" + evil_url,
        "up@" + evil_url.removeprefix("http://"),
    ]


def test_model_names_that_look_like_urls_or_paths_are_unknown_models(
    gw: Gateway, evil: raw.RawUpstream, good: raw.RawUpstream
) -> None:
    before = len(good.requests)
    for model in model_names(evil.url):
        body = {"model": model, "messages": MESSAGES}
        response = shared_client().post(gw.url + CHAT, json=body)
        assert response.status_code == 404, (model, response.text)
        assert response.json()["error"]["code"] == "model_not_found"
    assert evil.accepted == 0
    assert len(good.requests) == before


BODY_OVERRIDES = {
    "base_url": "{evil}/v1",
    "api_base": "{evil}/v1",
    "api_url": "{evil}/v1",
    "url": "{evil}/v1/chat/completions",
    "endpoint": "{evil}",
    "api_key": "sk-attacker",
    "headers": {"authorization": "Bearer sk-attacker", "host": "evil"},
    "extra_headers": {"authorization": "Bearer sk-attacker"},
    "azure_endpoint": "{evil}",
    "custom_llm_provider": "openai",
}


def _overrides(evil_url: str) -> dict:
    return {
        k: v.replace("{evil}", evil_url) if isinstance(v, str) else v
        for k, v in BODY_OVERRIDES.items()
    }


@pytest.mark.parametrize("stream", [False, True])
def test_url_and_key_fields_in_the_body_are_not_honoured_by_the_openai_provider(
    gw: Gateway, evil: raw.RawUpstream, good: raw.RawUpstream, stream: bool
) -> None:
    body = {"model": "up", "messages": MESSAGES, "stream": stream, **_overrides(evil.url)}
    response = shared_client().post(gw.url + CHAT, json=body)
    assert response.status_code == 200, response.text
    sent = good.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.headers["host"] == f"127.0.0.1:{good.port}"
    assert evil.accepted == 0


@pytest.mark.parametrize(
    "target",
    [
        "{evil}/v1/chat/completions",  # absolute-form request target
        "//127.0.0.1:{port}/v1/chat/completions",
        "/v1/chat/completions/../../../{evil}",
        "/v1/chat/completions?base_url={evil}",
    ],
)
def test_request_targets_cannot_point_the_gateway_elsewhere(
    gw: Gateway, evil: raw.RawUpstream, target: str
) -> None:
    path = target.format(evil=evil.url, port=evil.port)
    body = b'{"model": "up", "messages": [{"role": "user", "content": "hi"}]}'
    status, _, answer = exchange(gw.server.port, raw_post(path, body, []))
    assert status in (200, 400, 404), answer[:200]
    assert evil.accepted == 0


HEADER_TRICKS = [
    "host: {evil_host}",
    "x-forwarded-host: {evil_host}",
    "x-forwarded-proto: http",
    "x-original-url: {evil}/v1/chat/completions",
    "x-rewrite-url: {evil}/v1/chat/completions",
    "forwarded: host={evil_host};proto=http",
    "x-upstream-url: {evil}/v1",
    "x-base-url: {evil}/v1",
]


def test_host_and_forwarding_headers_do_not_move_the_upstream(
    gw: Gateway, evil: raw.RawUpstream, good: raw.RawUpstream
) -> None:
    evil_host = evil.url.removeprefix("http://")
    lines = [t.format(evil=evil.url, evil_host=evil_host).encode() for t in HEADER_TRICKS]
    lines = [line for line in lines if not line.startswith(b"host:")]
    body = b'{"model": "up", "messages": [{"role": "user", "content": "hi"}]}'
    request = raw_post(CHAT, body, lines).replace(b"host: gateway", b"host: " + evil_host.encode())
    status, _, answer = exchange(gw.server.port, request)
    assert status == 200, answer[:300]
    assert good.requests[-1].headers["host"] == f"127.0.0.1:{good.port}"
    assert not any(v for k, v in good.requests[-1].headers.items() if evil_host in v)
    assert evil.accepted == 0


def test_litellm_provider_refuses_api_base_and_api_key_in_the_body(
    evil: raw.RawUpstream, good: raw.RawUpstream
) -> None:
    pytest.importorskip("gateway.providers.litellm")  # slow import: before the 10 s start limit
    config = f"""
providers:
  viallm:
    kind: litellm
    litellm_provider: openai
    base_url: {good.url}/v1
    api_key: ${{UPSTREAM_KEY}}
models:
  viallm: {{deployments: [{{provider: viallm, model: gpt-x}}]{single_attempt()}}}
"""
    with running_gateway(config) as gateway:
        client = shared_client()
        ok = client.post(gateway.url + CHAT, json={"model": "viallm", "messages": MESSAGES})
        assert ok.status_code == 200, ok.text
        assert good.requests[-1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
        for name, value in _overrides(evil.url).items():
            body = {"model": "viallm", "messages": MESSAGES, name: value}
            response = client.post(gateway.url + CHAT, json=body)
            if response.status_code == 200:  # forwarded as an unknown field, not obeyed
                sent = good.requests[-1]
                assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}", name
            else:
                assert response.status_code == 400, (name, response.text)
                assert response.json()["error"]["param"] == name
    assert evil.accepted == 0
