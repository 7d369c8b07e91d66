"""The one admin-key check: every /admin endpoint answers alike, and a config reload that
adds the admin key turns the admin API on without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.requests import Request

from gateway.app import create_app
from gateway.config import load_config
from gateway.config.access import AuthConfig
from gateway.config.schema import GatewayConfig
from gateway.errors import AuthenticationFailed, GatewayError, PermissionDenied
from gateway.http.admin_auth import check_admin
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


def request_with(headers: dict[str, str]) -> Request:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/admin/keys", "headers": raw})


def config_with(admin_key: str | None) -> GatewayConfig:
    auth = AuthConfig(admin_key=SecretStr(admin_key) if admin_key else None)
    return GatewayConfig.model_construct(auth=auth)


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
def test_admin_check_decides_by_the_configured_key(
    admin_key: str | None, headers: dict[str, str], refused: type[GatewayError] | None
) -> None:
    if refused is None:
        check_admin(request_with(headers), config_with(admin_key))
        return
    with pytest.raises(refused) as caught:
        check_admin(request_with(headers), config_with(admin_key))
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
