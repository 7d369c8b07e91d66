"""`gateway db upgrade | status`: versions apply once, in order, even when run at once."""

from __future__ import annotations

import asyncio

import asyncpg

from gateway.cli import main
from gateway.db.migrations import status, upgrade
from gateway.db.versions import VERSIONS
from tests.db.conftest import fetch, fresh_database, run

ALL = ", ".join(str(v) for v, _, _ in VERSIONS)


def test_upgrade_applies_every_version_once_and_then_does_nothing(capsys) -> None:
    with fresh_database(migrate=False) as url:
        assert main(["db", "status", "--database", url]) == 1  # pending: non-zero
        assert "pending" in capsys.readouterr().out
        assert main(["db", "upgrade", "--database", url]) == 0
        assert capsys.readouterr().out.strip() == f"applied: {ALL}"
        assert main(["db", "upgrade", "--database", url]) == 0
        assert capsys.readouterr().out.strip() == "up to date"
        assert main(["db", "status", "--database", url]) == 0
        rows = fetch(url, "SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [v for v, _, _ in VERSIONS]


def test_concurrent_upgrades_apply_each_version_exactly_once() -> None:
    async def upgrade_once(url: str) -> list[int]:
        conn = await asyncpg.connect(url)
        try:
            return await upgrade(conn)
        finally:
            await conn.close()

    async def race(url: str) -> list[list[int]]:
        return await asyncio.gather(*(upgrade_once(url) for _ in range(6)))

    with fresh_database(migrate=False) as url:
        results = run(race(url))
        applied = sorted(v for result in results for v in result)
        assert applied == [v for v, _, _ in VERSIONS]  # once each, by exactly one upgrader
        assert sum(1 for r in results if r) == 1

        async def check() -> None:
            conn = await asyncpg.connect(url)
            try:
                assert all(s.applied_at for s in await status(conn))
            finally:
                await conn.close()

        run(check())


def test_cli_names_no_url_and_no_password_when_the_database_is_unreachable(capsys) -> None:
    secret_url = "postgresql://postgres:hunter2-secret@127.0.0.1:1/nowhere"
    assert main(["db", "upgrade", "--database", secret_url]) == 1
    captured = capsys.readouterr()
    assert "cannot connect" in captured.err
    assert "hunter2" not in captured.err + captured.out
