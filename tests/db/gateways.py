"""Gateways with a database for these tests: keys, prices and a Redis prefix of their own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from gateway.app import create_app
from gateway.auth.keys import hash_key
from gateway.config import load_config_text
from tests.conftest import upstream_config
from tests.servers import RunningServer, serve_in_thread

KEY_A = "sk-test-ledger-a-0123456789"
KEY_B = "sk-test-ledger-b-0123456789"
ADMIN = "admin-ledger-secret-0123456789"
os.environ.setdefault("TEST_LEDGER_ADMIN_KEY", ADMIN)
COST_PER_REQUEST = 11.0  # the fake upstream reports 7 + 4 tokens; $1 per token below


def db_config(upstream_url: str, database_url: str, state: str = "", teams: str = "{}") -> str:
    return upstream_config(
        upstream_url,
        f"""
state: {{database: "{database_url}" {state}}}
auth:
  admin_key: ${{TEST_LEDGER_ADMIN_KEY}}
  key_cache_seconds: 0.05
  team_cache_seconds: 0.2
  teams: {teams}
  keys:
    - {{id: key-a, hash: "{hash_key(KEY_A)}", user: alice, team: red}}
    - {{id: key-b, hash: "{hash_key(KEY_B)}", team: blue}}
pricing:
  gpt-test: {{input_per_mtok: 1000000, output_per_mtok: 1000000}}
""",
    )


def redis_state(redis_url: str, prefix: str) -> str:
    return f", backend: redis, redis_url: '{redis_url}', key_prefix: '{prefix}'"


@contextmanager
def running_gateway(yaml_text: str) -> Iterator[RunningServer]:
    """A gateway in a thread; leaving the block stops it (and flushes its ledger)."""
    with serve_in_thread(create_app(load_config_text(yaml_text))) as server:
        yield server


def chat(
    server: RunningServer, key: str, *, model: str = "gpt-test", **body: object
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **body},
        timeout=10,
    )


def admin(server: RunningServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN}"}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=10, **kwargs)
