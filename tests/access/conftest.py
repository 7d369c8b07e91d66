"""Fixtures for access-control tests: keys, a unique Redis prefix, gateways from YAML."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest
import redis

from gateway.auth.keys import hash_key
from tests.conftest import upstream_config
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

KEY_A = "sk-test-team-a-0123456789"
KEY_B = "sk-test-team-b-0123456789"
KEY_OLD = "sk-test-expired-0123456789"
ADMIN = "admin-secret-0123456789"
os.environ.setdefault("TEST_ENV_KEY", "sk-test-from-env-0123456789")
os.environ.setdefault("TEST_ADMIN_KEY", ADMIN)

KEYS_YAML = f"""
  keys:
    - {{id: team-a, hash: "{hash_key(KEY_A)}", user: alice, team: a, models: [gpt-test]}}
    - {{id: team-b, hash: "{hash_key(KEY_B)}", team: b, trusted_user: true}}
    - {{id: old, hash: "{hash_key(KEY_OLD)}", expires_at: "2020-01-01T00:00:00Z"}}
    - {{id: env, api_key: "${{TEST_ENV_KEY}}"}}
  admin_key: ${{TEST_ADMIN_KEY}}
"""


@pytest.fixture
def prefix(redis_url: str) -> str:
    """A unique Redis key prefix; fails (not skips) when Redis is not there."""
    redis.Redis.from_url(redis_url).ping()
    return f"test-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def make_gateway(
    start_gateway: Callable[[str], RunningServer],
    upstream_server: tuple[FakeUpstream, RunningServer],
    upstream: FakeUpstream,
) -> Callable[[str], RunningServer]:
    """A gateway in front of the fake upstream with `extra` YAML sections."""
    _, server = upstream_server

    def make(extra: str) -> RunningServer:
        return start_gateway(upstream_config(server.url, extra))

    return make


def redis_state(redis_url: str, prefix: str) -> str:
    return f"state: {{backend: redis, redis_url: '{redis_url}', key_prefix: '{prefix}'}}\n"
