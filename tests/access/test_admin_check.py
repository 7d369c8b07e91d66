"""The one admin-key check: every /admin endpoint answers alike, and a config reload that
adds the admin key turns the admin API on without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from gateway.app import create_app
from gateway.auth.authenticator import Authenticator
from gateway.config import load_config
from gateway.config.access import AuthConfig, LimitsConfig
from gateway.errors import AuthenticationFailed, GatewayError, PermissionDenied
from gateway.observability.metrics import Metrics
from gateway.ratelimit.limiter import Limiter
from gateway.state.memory import MemoryState
from tests.servers import serve_in_thread

ADMIN = "adm-check-secret-0123456789"
ADMIN_ENDPOINTS = [
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys"),
    ("DELETE", "/admin/keys/x"),
    ("GET", "/admin/keys/x/usage"),
    ("POST", "/admin/reload"),
    ("GET", "/admin/experiments/x"),
]


def authenticator_with(admin_key: str | None) -> Authenticator:
    auth = AuthConfig(admin_key=SecretStr(admin_key) if admin_key else None)
    metrics = Metrics()
    limiter = Limiter("memory://", "t:", metrics)
    return Authenticator.build(auth, LimitsConfig(), MemoryState(), limiter, metrics)


@pytest.mark.parametrize(
    ("admin_key", "headers", "refused"),
    [
        (None, {"authorization": f"Bearer {ADMIN}"}, PermissionDenied),
        (None, {}, PermissionDenied),
        (ADMIN, {}, AuthenticationFailed),
        (ADMIN, {"authorization": "Bearer wrong"}, AuthenticationFailed),
        (ADMIN, {"authorization": f"Bearer {ADMIN}x"}, AuthenticationFailed),
        (ADMIN, {"authorization": f"Bearer {ADMIN}"}, None),
        (ADMIN, {"authorization": f"bearer {ADMIN}"}, None),
        (ADMIN, {"x-api-key": ADMIN}, None),
    ],
)
async def test_admin_check_decides_by_the_configured_key(
    admin_key: str | None, headers: dict[str, str], refused: type[GatewayError] | None
) -> None:
    auth = authenticator_with(admin_key)
    if refused is None:
        await auth.admin(headers, "10.0.0.1")
        return
    with pytest.raises(refused) as caught:
        await auth.admin(headers, "10.0.0.1")
    assert ADMIN not in caught.value.message and "wrong" not in caught.value.message


def config_text(auth: str) -> str:
    return f"""
server: {{reload: {{watch_file: true, poll_seconds: 0.05}}}}
{auth}
providers:
  mock: {{kind: mock}}
models:
  m: {{deployments: [{{provider: mock, model: m}}]}}
"""


def statuses(url: str, headers: dict[str, str]) -> dict[tuple[str, str], tuple[int, str]]:
    out = {}
    for method, path in ADMIN_ENDPOINTS:
        reply = httpx.request(method, url + path, headers=headers, json={}, timeout=5)
        out[(method, path)] = (reply.status_code, reply.json()["error"]["code"])
    return out


def test_admin_key_added_by_reload_turns_the_admin_api_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_CHECK_ADMIN_KEY", ADMIN)
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text(""))
    auth = {"authorization": f"Bearer {ADMIN}"}
    with serve_in_thread(create_app(load_config(path), config_path=str(path))) as server:
        disabled = statuses(server.url, auth)
        assert set(disabled.values()) == {(403, "admin_disabled")}, disabled
        path.write_text(config_text("auth: {admin_key: '${GW_CHECK_ADMIN_KEY}'}"))
        deadline = time.monotonic() + 5
        while httpx.get(server.url + "/admin/keys", headers=auth).status_code != 200:
            assert time.monotonic() < deadline, "the reloaded admin key never took effect"
            time.sleep(0.05)
        assert set(statuses(server.url, {}).values()) == {(401, "invalid_admin_key")}
