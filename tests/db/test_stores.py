"""The database-side stores on their own: key files, stored responses, the ledger writer."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest

from gateway.accounting.budgets import period_ids, spend_key
from gateway.accounting.teams import TeamPolicies
from gateway.auth.principal import Principal
from gateway.cli import main
from gateway.config.access import BudgetConfig
from gateway.db.key_files import parse_key_lines
from gateway.db.ledger import COLUMNS, LedgerWriter
from gateway.db.pool import Database
from gateway.db.responses import PostgresResponseStore
from gateway.db.spend import LedgerSpendStore
from gateway.observability.metrics import Metrics
from gateway.state.redis import RedisState
from tests.db.conftest import clear_ledger, fetch, fetchval, fresh_database
from tests.redis_keys import drop_prefix

HASH = "sha256:" + "ab" * 32
RECORD = {"id": "moved", "hash": HASH, "created_at": "2026-01-01T00:00:00+00:00"}


def test_keys_move_between_databases_as_hashes(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = orjson.dumps({**RECORD, "policy": {"team": "red", "models": ["gpt-test"]}})
    source = tmp_path / "keys.jsonl"
    source.write_bytes(line + b"\n")
    assert main(["keys", "import", "--database", database_url, str(source)]) == 0
    assert "imported 1" in capsys.readouterr().out
    assert main(["keys", "import", "--database", database_url, str(source)]) == 0
    assert "1 already present" in capsys.readouterr().out
    assert main(["keys", "export", "--database", database_url]) == 0
    exported = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    moved = next(r for r in exported if r["id"] == "moved")
    assert moved["hash"] == HASH and moved["policy"]["team"] == "red"
    with fresh_database() as other:
        target = tmp_path / "out.jsonl"
        target.write_text("\n".join(orjson.dumps(r).decode() for r in exported))
        assert main(["keys", "import", "--database", other, str(target)]) == 0
        assert fetchval(other, "SELECT count(*) FROM api_keys") == len(exported)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"id": "a b", "hash": "' + HASH + '"}', "'id'"),
        ('{"id": "k", "hash": "sk-gw-the-key-itself"}', "'hash'"),
        (
            '{"id": "k", "hash": "' + HASH + '", "policy": {"budget": {"usd_per_day": -1}}}',
            "policy",
        ),
        ('{"id": "k", "hash": "' + HASH + '", "policy": {"nonsense": 1}}', "policy"),
    ],
)
def test_key_files_are_checked_line_by_line(line: str, problem: str) -> None:
    good = orjson.dumps({**RECORD, "policy": {}}).decode()
    with pytest.raises(ValueError, match=problem) as err:
        parse_key_lines(f"{good}\n\n{line}\n")
    assert str(err.value).startswith("line 3:")


def test_a_bad_key_file_imports_nothing(database_url: str, tmp_path: Path) -> None:
    before = fetchval(database_url, "SELECT count(*) FROM api_keys")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(orjson.dumps({**RECORD, "id": "first"}).decode() + "\nnot json\n")
    assert main(["keys", "import", "--database", database_url, str(bad)]) == 1
    assert fetchval(database_url, "SELECT count(*) FROM api_keys") == before


def test_stored_responses_are_scoped_to_their_key_and_expire(database_url: str) -> None:
    async def scenario() -> None:
        db = Database(database_url)
        store = PostgresResponseStore(db)
        try:
            await store.put("resp_1", "key-a", {"output": "hi"}, ttl=None)
            await store.put("resp_old", "key-a", {"output": "old"}, ttl=-1)
            assert await store.get("resp_1", "key-a") == {"output": "hi"}
            assert await store.get("resp_1", "key-b") is None
            assert await store.get("resp_old", "key-a") is None
            assert not await store.delete("resp_1", "key-b")
            assert await store.delete("resp_1", "key-a")
            assert await store.get("resp_1", "key-a") is None
            assert await store.purge_expired() == 1
        finally:
            await db.aclose()

    asyncio.run(scenario())


def row(request_id: str) -> tuple[object, ...]:
    values: dict[str, object] = {
        "entry_id": uuid.uuid4().int,
        "at": 1.7e9,
        "request_id": request_id,
        "key_id": "k",
        "stream": False,
        "status": 200,
    }
    defaults = {"text": "", "integer": 0, "double precision": 0.0, "smallint": 0}
    return tuple(values.get(name, defaults.get(kind)) for name, kind in COLUMNS)


def test_a_retried_batch_never_duplicates_and_a_refused_row_does_not_block_others(
    database_url: str,
) -> None:
    clear_ledger(database_url)
    metrics = Metrics()

    async def scenario() -> None:
        db = Database(database_url)
        writer = LedgerWriter(db, metrics, batch=10)
        try:
            first = [row(f"r{i}") for i in range(5)]
            for r in first:
                writer.submit(r)
            assert await writer.write_batch()
            for r in first:  # the same rows again: a batch whose commit answer was lost
                writer.submit(r)
            writer.submit(row("bad\x00id"))  # PostgreSQL text refuses NUL
            writer.submit(row("after"))
            assert await writer.write_batch()
            assert not writer.queue
        finally:
            await writer.aclose()
            await db.aclose()

    asyncio.run(scenario())
    ids = sorted(
        r["request_id"] for r in fetch(database_url, "SELECT request_id FROM usage_ledger")
    )
    assert ids == ["after", "r0", "r1", "r2", "r3", "r4"]
    assert dropped(metrics) == 1


def test_a_full_queue_counts_what_it_drops() -> None:
    metrics = Metrics()
    writer = LedgerWriter(Database("postgresql://unused@127.0.0.1:1/x"), metrics, capacity=3)
    for i in range(5):
        writer.submit(row(str(i)))
    assert len(writer.queue) == 3
    assert (
        metrics.registry.get_sample_value("gateway_ledger_rows_total", {"outcome": "dropped"}) == 2
    )


def dropped(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("gateway_ledger_rows_total", {"outcome": "dropped"})


def test_ledger_budgets_read_no_totals_per_request_and_still_notice_a_lost_hash(
    database_url: str, redis_url: str
) -> None:
    """Totals are read (to rebuild them) only when the reservation finds a counter hash
    without its `seeded` mark: not on every request, yet at once after Redis lost them."""
    clear_ledger(database_url)
    prefix = f"gw-test-{uuid.uuid4().hex[:8]}:"

    async def scenario() -> None:
        db = Database(database_url)
        state = RedisState(redis_url, prefix, lease_fraction=0)  # every reservation in Redis
        budget = BudgetConfig(usd_per_day=1.0)
        spend = LedgerSpendStore(state, TeamPolicies(), db)
        principal = Principal(key_id="seeded-key", budget=budget)
        reads = 0
        read = state.hgetall_many

        async def counted(keys: list[str]) -> list[dict[str, float]]:
            nonlocal reads
            reads += 1
            return await read(keys)

        state.hgetall_many = counted  # type: ignore[method-assign]
        try:
            first = await spend.reserve(principal, 10, 0.1)  # rebuilt from the ledger: read
            assert reads > 0
            reads = 0
            for _ in range(5):
                await spend.reserve(principal, 10, 0.1)
            assert reads == 0  # marked hashes: no read per request
            await spend.settle(principal, first, 10, 0.5)  # 0.5 spent, 0.5 still reserved
            await state.write_pending()
            drop_prefix(redis_url, prefix)  # Redis lost the totals
            await spend.reserve(principal, 10, 0.1)
            assert reads > 0  # noticed by the reservation itself, and rebuilt
            (day,) = await read([spend_key("key", "seeded-key", "day", period_ids()["day"])])
            assert day == {"seeded": 1.0, "reserved_tokens": 10.0, "reserved_usd": 0.1}
        finally:
            await state.aclose()
            await db.aclose()

    try:
        asyncio.run(scenario())
    finally:
        drop_prefix(redis_url, prefix)
