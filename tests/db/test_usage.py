"""Usage where people look: GET /admin/usage and `gateway usage report`, from the ledger."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gateway.cli import main
from tests.db.conftest import clear_ledger, fetchval
from tests.db.gateways import (
    ADMIN,
    COST_PER_REQUEST,
    KEY_A,
    KEY_B,
    admin,
    chat,
    db_config,
    running_gateway,
)
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

Upstream = tuple[FakeUpstream, RunningServer]


@pytest.fixture(scope="module")
def gateway_with_usage(database_url: str, upstream_server: Upstream):  # type: ignore[no-untyped-def]
    clear_ledger(database_url)
    upstream_server[0].reset()
    with running_gateway(db_config(upstream_server[1].url, database_url)) as gw:
        for key in (KEY_A, KEY_A, KEY_B):
            assert chat(gw, key).status_code == 200
        assert chat(gw, KEY_B, model="mock-small").status_code == 200
        yield gw


def wait_rows(url: str, count: int) -> None:
    from tests.db.conftest import wait_until

    assert wait_until(lambda: fetchval(url, "SELECT count(*) FROM usage_ledger") == count)


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("key", {"key-a": (2, 2 * COST_PER_REQUEST), "key-b": (2, COST_PER_REQUEST)}),
        ("team", {"red": (2, 2 * COST_PER_REQUEST), "blue": (2, COST_PER_REQUEST)}),
        ("model", {"gpt-test": (3, 3 * COST_PER_REQUEST), "mock-small": (1, 0.0)}),
    ],
)
def test_usage_is_grouped_by_key_team_and_model(
    gateway_with_usage: RunningServer, database_url: str, group_by: str, expected: dict
) -> None:
    wait_rows(database_url, 4)
    answer = admin(gateway_with_usage, "GET", f"/admin/usage?group_by={group_by}")
    assert answer.status_code == 200
    got = {row[group_by]: (row["requests"], row["cost_usd"]) for row in answer.json()["data"]}
    assert got == expected  # whole-dollar prices: exact sums


def test_usage_by_day_within_a_range(gateway_with_usage: RunningServer, database_url: str) -> None:
    wait_rows(database_url, 4)
    since = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    answer = admin(gateway_with_usage, "GET", f"/admin/usage?group_by=day&from={since}")
    assert answer.status_code == 200
    days = answer.json()["data"]
    assert len(days) == 1 and days[0]["requests"] == 4
    empty = admin(gateway_with_usage, "GET", "/admin/usage?from=2021-01-01&to=2021-02-01")
    assert empty.json()["data"] == []


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("group_by=user_name;DROP TABLE usage_ledger", "group_by"),
        ("group_by=" + "k" * 5000, "group_by"),
        ("from=yesterday", "from"),
        ("from=2024-02-30", "from"),
        ("to=" + "9" * 100, "to"),
        ("from=2024-05-01&to=2024-04-01", "from"),
        ("from=2020-01-01&to=2024-01-01", "from"),
    ],
)
def test_bad_usage_parameters_get_a_400_naming_them(
    gateway_with_usage: RunningServer, query: str, param: str
) -> None:
    answer = admin(gateway_with_usage, "GET", f"/admin/usage?{query}")
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param


def test_usage_needs_the_admin_key(gateway_with_usage: RunningServer) -> None:
    url = f"{gateway_with_usage.url}/admin/usage"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": f"Bearer {KEY_A}"}).status_code == 401
    assert httpx.get(url, headers={"authorization": f"Bearer {ADMIN}"}).status_code == 200


def test_usage_without_a_database_is_a_clear_404(start_gateway, upstream_server: Upstream) -> None:  # type: ignore[no-untyped-def]
    config = db_config(upstream_server[1].url, "x").replace('state: {database: "x" }', "")
    gw = start_gateway(config)
    answer = admin(gw, "GET", "/admin/usage")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "ledger_disabled"


def test_usage_report_prints_a_table_and_csv(
    gateway_with_usage: RunningServer, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wait_rows(database_url, 4)
    assert main(["usage", "report", "--database", database_url, "--group-by", "team"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["team", "requests"]
    assert table[1].split()[:2] == ["red", "2"]
    argv = ["usage", "report", "--database", database_url, "--format", "csv"]
    assert main(argv) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["key"]: float(r["cost_usd"]) for r in rows} == {
        "key-a": 2 * COST_PER_REQUEST,
        "key-b": COST_PER_REQUEST,
    }
    assert main(["usage", "report", "--database", database_url, "--from", "nope"]) == 1
