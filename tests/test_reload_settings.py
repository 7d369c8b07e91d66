"""Every setting documented as reloadable takes effect on a hot reload (issue 10, item 13):
for each, a real gateway answers a probe one way, its file changes, POST /admin/reload, and
the same probe answers the new way. (`server.*` and `tracing.*` are restart-only.)"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.config import load_config
from tests.servers import RunningServer, serve_in_thread

ADMIN = os.environ.setdefault("RELOAD_ADMIN_KEY", "adm-reload-0123456789")
KEY = os.environ.setdefault("RELOAD_KEY", "sk-reload-one-0123456789")
NEW_KEY = os.environ.setdefault("RELOAD_NEW_KEY", "sk-reload-two-0123456789")
os.environ.setdefault("RELOAD_METRICS_TOKEN", "metrics-reload-0123456789")
BASE_KEYS = '[{id: one, api_key: "${RELOAD_KEY}"}]'
TWO_KEYS = '[{id: one, api_key: "${RELOAD_KEY}"}, {id: two, api_key: "${RELOAD_NEW_KEY}"}]'
MODELS = "  m: {deployments: [{provider: mock, model: m-1}]}\n"
SMART = "  smart: {deployments: [{provider: mock, model: smart-1}]}\n"


def config(*, keys: str = BASE_KEYS, models: str = MODELS, extra: str = "") -> str:
    return f"""
auth: {{admin_key: "${{RELOAD_ADMIN_KEY}}", keys: {keys}}}
providers:
  mock: {{kind: mock}}
models:
{models}{extra}"""


def chat(url: str, key: str = KEY, model: str = "m", **body: object) -> httpx.Response:
    payload = {"model": model, "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(
        f"{url}/v1/chat/completions", json=payload, headers={"authorization": f"Bearer {key}"}
    )


def two_chats(url: str) -> tuple[int, int]:
    return chat(url).status_code, chat(url).status_code


def metrics_open(url: str) -> int:
    return httpx.get(f"{url}/metrics").status_code


def metrics_with_token(url: str) -> int:
    token = os.environ["RELOAD_METRICS_TOKEN"]
    return httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {token}"}).status_code


def listed(url: str) -> list[str]:
    answer = httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {KEY}"})
    return sorted(m["id"] for m in answer.json()["data"])


CASES: list[tuple[str, str, str, Callable[[str], object], object, object]] = [
    (
        "metrics.token",
        config(),
        config(extra='metrics: {token: "${RELOAD_METRICS_TOKEN}"}\n'),
        lambda url: (metrics_open(url), metrics_with_token(url)),
        (200, 200),
        (401, 200),
    ),
    (
        "metrics.enabled",
        config(),
        config(extra="metrics: {enabled: false}\n"),
        metrics_open,
        200,
        404,
    ),
    (
        "auth.keys added",
        config(),
        config(keys=TWO_KEYS),
        lambda url: chat(url, NEW_KEY).status_code,
        401,
        200,
    ),
    (
        "auth.keys removed",
        config(keys=TWO_KEYS),
        config(),
        lambda url: chat(url, NEW_KEY).status_code,
        200,
        401,
    ),
    (
        "auth.keys policy",
        config(),
        config(
            keys='[{id: one, api_key: "${RELOAD_KEY}", models: [smart]}]', models=MODELS + SMART
        ),
        lambda url: chat(url).status_code,
        200,
        403,
    ),
    (
        "limits",
        config(),
        config(extra="limits: {default_key: {requests: ['1/minute']}}\n"),
        two_chats,
        (200, 200),
        (200, 429),
    ),
    (
        "limits.models",
        config(),
        config(extra="limits: {models: {m: {requests: ['1/minute']}}}\n"),
        two_chats,
        (200, 200),
        (200, 429),
    ),
    (
        "caps",
        config(),
        config(extra="caps: {on_exceed: reject, models: {m: {max_tokens: 5}}}\n"),
        lambda url: chat(url, max_tokens=10).status_code,
        200,
        400,
    ),
    (
        "models",
        config(),
        config(models=MODELS + SMART),
        lambda url: (chat(url, model="smart").status_code, listed(url)),
        (404, ["m"]),
        (200, ["m", "smart"]),
    ),
    (
        "routes",
        config(),
        config(extra="routes: {auto: {default: m}}\n"),
        lambda url: chat(url, model="auto").headers.get("x-gateway-route"),
        None,
        "auto -> m (default)",
    ),
    (
        "experiments",
        config(models=MODELS + SMART),
        config(
            models=MODELS + SMART,
            extra="experiments: {e: {applies_to: m, variants: {only: {target: smart}}}}\n",
        ),
        lambda url: chat(url).headers.get("x-gateway-experiment"),
        None,
        "e=only",
    ),
    (
        "auth.admin_key",
        config(),
        config().replace("${RELOAD_ADMIN_KEY}", "${RELOAD_NEW_KEY}"),
        lambda url: httpx.get(f"{url}/admin/keys", headers={"x-api-key": ADMIN}).status_code,
        200,
        401,
    ),
]


@pytest.mark.parametrize(
    ("before", "after", "probe", "expected_before", "expected_after"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_reloaded_setting_takes_effect(
    tmp_path: Path,
    before: str,
    after: str,
    probe: Callable[[str], object],
    expected_before: object,
    expected_after: object,
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(before)
    with serve_in_thread(create_app(load_config(path), config_path=str(path))) as server:
        assert probe(server.url) == expected_before
        path.write_text(after)
        reloaded = reload(server, ADMIN)
        assert reloaded.json() == {"reloaded": True, "problems": []}, reloaded.text
        assert probe(server.url) == expected_after


def reload(server: RunningServer, admin_key: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/admin/reload", headers={"authorization": f"Bearer {admin_key}"}
    )
