"""Redis loses everything (flushed: only this test's prefix): admin-created keys keep
working from the database, revoked ones stay revoked, and budgets keep their totals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from gateway.auth.keys import hash_key
from gateway.cli import main
from tests.db.conftest import clear_ledger, database_cut_off, fetchval, wait_until
from tests.db.gateways import (
    COST_PER_REQUEST,
    KEY_A,
    admin,
    chat,
    db_config,
    redis_state,
    running_gateway,
)
from tests.redis_keys import drop_prefix, unique_prefix
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

Upstream = tuple[FakeUpstream, RunningServer]


MakeConfig = Callable[..., str]


@pytest.fixture
def make_config(
    database_url: str,
    redis_url: str,
    prefix: str,
    upstream_server: Upstream,
    upstream: FakeUpstream,
) -> MakeConfig:
    """The gateway config of these tests: the database, Redis under this test's prefix."""

    def make(teams: str = "{}") -> str:
        state = redis_state(redis_url, prefix)
        return db_config(upstream_server[1].url, database_url, state, teams=teams)

    return make


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    redis.Redis.from_url(redis_url).ping()  # fails (not skips) without Redis
    prefix = unique_prefix()
    yield prefix
    drop_prefix(redis_url, prefix)


def test_admin_created_keys_survive_a_redis_flush_and_revocations_stay(
    make_config: MakeConfig, database_url: str, redis_url: str, prefix: str
) -> None:
    config = make_config()
    with running_gateway(config) as gw:
        kept = admin(gw, "POST", "/admin/keys", json={"id": "dyn-kept", "team": "red"}).json()
        gone = admin(gw, "POST", "/admin/keys", json={"id": "dyn-gone"}).json()
        assert chat(gw, kept["key"]).status_code == 200
        drop_prefix(redis_url, prefix)  # Redis restarted without persistence
        assert wait_until(lambda: chat(gw, kept["key"]).status_code == 200)
        assert chat(gw, gone["key"]).status_code == 200
        assert admin(gw, "DELETE", "/admin/keys/dyn-gone").status_code == 200
        drop_prefix(redis_url, prefix)
        assert wait_until(lambda: chat(gw, gone["key"]).status_code == 401)
        assert chat(gw, kept["key"]).status_code == 200
        listed = {k["id"] for k in admin(gw, "GET", "/admin/keys").json()["data"]}
        assert "dyn-kept" in listed and "dyn-gone" not in listed
    stored = fetchval(database_url, "SELECT record::text FROM api_keys WHERE id = 'dyn-kept'")
    assert kept["key"] not in stored and "sha256:" in stored  # the hash, never the key


def test_a_budget_at_90_percent_stays_at_90_percent_after_redis_loses_it(
    make_config: MakeConfig, database_url: str, redis_url: str, prefix: str
) -> None:
    clear_ledger(database_url)
    # Budgets reserve each request's maximum cost (prompt estimate + max_tokens) before the
    # call: room for nine real requests, then for one more reservation (<= 20), not two.
    budget = 9 * COST_PER_REQUEST + 20
    teams = f"{{red: {{budget: {{usd_per_day: {budget}}}}}}}"
    config = make_config(teams)
    with running_gateway(config) as gw:
        for _ in range(9):
            assert chat(gw, KEY_A, max_tokens=4).status_code == 200
        usage = admin(gw, "GET", "/admin/keys/key-a/usage").json()
        assert usage["team"]["usage"]["day"]["usd"] == pytest.approx(9 * COST_PER_REQUEST)
        count = "SELECT count(*) FROM usage_ledger WHERE team = 'red'"
        assert wait_until(lambda: fetchval(database_url, count) == 9)
        drop_prefix(redis_url, prefix)
        assert chat(gw, KEY_A, max_tokens=4).status_code == 200  # the last room: allowed
        refused = chat(gw, KEY_A, max_tokens=4)
        assert refused.status_code == 429, "the budget restarted at zero"
        assert refused.json()["error"]["type"] == "insufficient_quota"
        usage = admin(gw, "GET", "/admin/keys/key-a/usage").json()
        assert usage["team"]["usage"]["day"]["usd"] == pytest.approx(10 * COST_PER_REQUEST)


def test_redis_and_the_database_both_lost_budgets_fail_open_and_ready_says_degraded(
    make_config: MakeConfig, database_url: str, redis_url: str, prefix: str
) -> None:
    teams = "{red: {budget: {usd_per_day: 1000000}}}"
    config = make_config(teams)
    with running_gateway(config) as gw:
        assert chat(gw, KEY_A).status_code == 200
        with database_cut_off(database_url):
            drop_prefix(redis_url, prefix)
            assert [chat(gw, KEY_A).status_code for _ in range(5)] == [200] * 5
            ready = httpx.get(f"{gw.url}/ready").json()
            assert ready["status"] == "degraded" and ready["checks"]["database"] == "unreachable"
        assert wait_until(lambda: "database" not in httpx.get(f"{gw.url}/ready").json()["checks"])
    assert wait_until(lambda: fetchval(database_url, "SELECT count(*) FROM usage_ledger") >= 6)


def test_admin_key_changes_while_the_database_is_down_get_503_and_change_nothing(
    make_config: MakeConfig, database_url: str, redis_url: str, prefix: str
) -> None:
    config = make_config()
    with running_gateway(config) as gw:
        kept = admin(gw, "POST", "/admin/keys", json={"id": "dyn-outage"}).json()
        with database_cut_off(database_url):
            created = admin(gw, "POST", "/admin/keys", json={"id": "dyn-new"})
            assert created.status_code == 503
            assert created.json()["error"]["message"].startswith("The key database")
            assert admin(gw, "DELETE", "/admin/keys/dyn-outage").status_code == 503
            assert chat(gw, kept["key"]).status_code == 200  # Redis still has it
        assert admin(gw, "GET", "/admin/keys/dyn-new/usage").status_code == 404
        assert chat(gw, kept["key"]).status_code == 200


def test_imported_keys_reach_running_instances(
    make_config: MakeConfig, database_url: str, tmp_path: Path
) -> None:
    config = make_config()
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(config)
    moved = "sk-gw-moved-from-another-instance-0123456789"
    record = {"id": "moved-in", "hash": hash_key(moved), "policy": {"team": "red"}}
    keys_file = tmp_path / "keys.jsonl"
    keys_file.write_bytes(orjson.dumps(record) + b"\n")
    with running_gateway(config) as gw:
        assert admin(gw, "GET", "/admin/keys").status_code == 200  # the state is synced
        assert chat(gw, moved).status_code == 401
        argv = ["--database", database_url, "--config", str(config_path), str(keys_file)]
        assert main(["keys", "import", *argv]) == 0
        assert wait_until(lambda: chat(gw, moved).status_code == 200)
